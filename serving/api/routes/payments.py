"""Card tokenisation (the simulated provider's "Elements") and the provider's webhook."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool

from serving.api.schemas.payments import CardIn, PaymentMethodPublic
from serving.services.checkout.payments.webhooks import HEADER
from serving.services.checkout.service import runtime

router = APIRouter(prefix="/api/v1/payments", tags=["payments"])


@router.post(
    "/methods",
    status_code=status.HTTP_201_CREATED,
    response_model=PaymentMethodPublic,
    responses={422: {}},
)
def create_method(body: CardIn, request: Request) -> dict:
    """Exchange card details for a ``pm_`` token; the details are not stored or logged."""
    info = runtime(request.app).provider.tokenize(
        card_number=body.card_number, exp_month=body.exp_month, exp_year=body.exp_year, cvc=body.cvc
    )
    return {
        "payment_method": info.id,
        "brand": info.brand,
        "last4": info.last4,
        "exp_month": body.exp_month,
        "exp_year": body.exp_year,
    }


@router.post("/webhook", responses={400: {}, 422: {}})
async def webhook(request: Request) -> dict:
    """Provider events, signed ``Storeloop-Signature: t=..,v1=..``; replays are ignored."""
    body = await request.body()
    rt = runtime(request.app)
    return await run_in_threadpool(rt.receive_webhook, body, request.headers.get(HEADER))
