"""Request bodies of the seller, membership, return and dispute routes (closed: extra fields
are refused, so no owner, price or status can be named by a client)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .common import DbId, LineQuantity, StrictId, Text


class SellerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: StrictId
    display_name: Text = Field(min_length=1, max_length=200)
    commission_bps: int = Field(1000, strict=True, ge=0, le=10_000)


class SellerProducts(BaseModel):
    """Existing products an admin hands to a seller (``POST …/sellers/{id}/products``)."""

    model_config = ConfigDict(extra="forbid")

    product_ids: list[StrictId] = Field(min_length=1, max_length=1000)


class MembershipStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment_method: str = Field(min_length=3, max_length=64, pattern=r"^pm_[A-Za-z0-9]+$")


class ReturnLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: DbId
    quantity: LineQuantity


class ReturnCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
    lines: list[ReturnLineIn] = Field(min_length=1, max_length=100)
    reason: Text = Field("", max_length=200)


class ReturnReceiveLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: DbId
    disposition: Literal["restock", "write_off"]


class ReturnReceive(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: list[ReturnReceiveLine] = Field(default_factory=list, max_length=100)


class DisputeEvidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    evidence: Text = Field(min_length=1, max_length=20_000)
