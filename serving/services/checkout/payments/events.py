"""The shape of a provider webhook event, checked after its signature and before any use.

A correct signature says the body came from someone holding the secret, not that it is well
formed: a signed body with a missing ``amount_refunded``, an amount of ``"lots"`` or an
``order_id`` that is an object must be a 400, never a 500 deep inside the handler. Types are
strict (no ``"2"`` for 2, no ``true`` for 1) and lengths fit the columns they may reach.

What the fields *say* is still not believed: the handler reads the intent back from the
provider by its id and acts on the provider's status, amounts and order id only
(:func:`serving.services.checkout.webhooks.receive_webhook`). The body contributes the event id (for
de-duplication), its type, the intent id to look up, and an order id that must agree with the
provider's.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from serving.core.errors import BadRequest

#: Event types the shop acts on; any other (signed, well-formed) type is acknowledged only.
HANDLED = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "charge.refunded",
    }
)

_ID = r"^[A-Za-z0-9_:-]+$"


class _Metadata(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    order_id: str | None = Field(None, min_length=1, max_length=40, pattern=_ID)


class _Object(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    id: str = Field(min_length=1, max_length=40, pattern=_ID)
    status: str | None = Field(None, max_length=40)
    amount: int | None = Field(None, ge=0)
    amount_refunded: int | None = Field(None, ge=0)
    currency: str | None = Field(None, max_length=3)
    metadata: _Metadata | None = None


class _Data(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    object: _Object


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    id: str = Field(min_length=1, max_length=40, pattern=_ID)
    type: str = Field(min_length=1, max_length=60, pattern=r"^[a-z_.]+$")
    data: _Data

    @model_validator(mode="after")
    def _refund_has_amount(self) -> _Event:
        if self.type == "charge.refunded" and self.data.object.amount_refunded is None:
            raise ValueError("a charge.refunded event needs data.object.amount_refunded")
        return self


@dataclass(frozen=True)
class ProviderEvent:
    """A well-formed event: what it claims, before the provider is asked."""

    event_id: str
    event_type: str
    intent_id: str
    #: The order id the body names, if any; only compared with the provider's.
    claimed_order_id: str | None

    @property
    def handled(self) -> bool:
        return self.event_type in HANDLED


def parse(body: bytes) -> ProviderEvent:
    """The event in ``body``, or a 400 problem that says what is wrong with it."""
    try:
        event = _Event.model_validate_json(body)  # parsed and checked in one pass
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise BadRequest("The webhook body is not JSON") from None
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise BadRequest(
            f"The webhook body is not a provider event: {where}: {first['msg']}",
            errors=[
                {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors()[:10]
            ],
        ) from None
    obj = event.data.object
    return ProviderEvent(
        event_id=event.id,
        event_type=event.type,
        intent_id=obj.id,
        claimed_order_id=obj.metadata.order_id if obj.metadata is not None else None,
    )
