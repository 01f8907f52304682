"""Payment-method tokenisation models; card details exist only in this request body."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card_number: str = Field(pattern=r"^[0-9][0-9 -]{10,21}[0-9]$")
    exp_month: int = Field(strict=True, ge=1, le=12)
    exp_year: int = Field(strict=True, ge=2000, le=2100)
    cvc: str = Field(pattern=r"^[0-9]{3,4}$")

    def __repr__(self) -> str:  # never let a card reach a log line through repr()
        return "CardIn(<redacted>)"

    __str__ = __repr__


class PaymentMethodPublic(BaseModel):
    payment_method: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
