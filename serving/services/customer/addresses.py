"""The address book: any number of addresses per customer, at most one default.

The first address a customer saves becomes the default; making another one the default
clears the old one in the same transaction (a partial unique index on ``user_id WHERE
is_default`` makes two defaults impossible even under concurrent requests); deleting the
default promotes the most recently saved remaining address, so a customer with addresses
always has a default.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from serving.core.clock import utcnow
from serving.core.errors import Conflict, NotFound
from serving.db.tables import Address

#: Enough for home, work, family and a few gift recipients; a cap keeps a script from
#: filling the table through one account.
MAX_ADDRESSES = 50

FIELDS = ("label", "name", "line1", "line2", "city", "postal_code", "country")


def address_dict(row: Address) -> dict[str, Any]:
    return {
        "id": row.id,
        **{f: getattr(row, f) for f in FIELDS},
        "is_default": row.is_default,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def shipping_address(row: Address) -> dict[str, Any]:
    """The address as an order's ``shipping_address`` (the checkout's shape)."""
    return {f: getattr(row, f) for f in FIELDS if f != "label"}


def list_addresses(session: Session, user_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Address)
        .where(Address.user_id == user_id)
        .order_by(Address.is_default.desc(), Address.id)
    ).scalars()
    return [address_dict(r) for r in rows]


def _own(session: Session, user_id: int, address_id: int) -> Address:
    row = session.get(Address, address_id)
    # Someone else's address is "not found", never "forbidden": ids must not leak existence.
    if row is None or row.user_id != user_id:
        raise NotFound("Address", address_id)
    return row


def get_address(session: Session, user_id: int, address_id: int) -> Address:
    return _own(session, user_id, address_id)


def default_address(session: Session, user_id: int) -> Address | None:
    return session.execute(
        select(Address).where(Address.user_id == user_id, Address.is_default.is_(True))
    ).scalar_one_or_none()


def _clear_default(session: Session, user_id: int) -> None:
    session.execute(
        update(Address)
        .where(Address.user_id == user_id, Address.is_default.is_(True))
        .values(is_default=False)
    )
    session.flush()


def add_address(
    session: Session, user_id: int, values: dict[str, Any], *, make_default: bool
) -> dict[str, Any]:
    count = session.execute(
        select(func.count()).select_from(Address).where(Address.user_id == user_id)
    ).scalar_one()
    if count >= MAX_ADDRESSES:
        raise Conflict(
            f"An address book holds at most {MAX_ADDRESSES} addresses", code="address_book_full"
        )
    make_default = make_default or count == 0
    if make_default:
        _clear_default(session, user_id)
    now = utcnow()
    row = Address(
        user_id=user_id,
        **{**values, "country": values["country"].upper()},
        is_default=make_default,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return address_dict(row)


def update_address(
    session: Session, user_id: int, address_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    row = _own(session, user_id, address_id)
    for key, value in changes.items():
        setattr(row, key, value.upper() if key == "country" else value)
    row.updated_at = utcnow()
    session.flush()
    return address_dict(row)


def make_default(session: Session, user_id: int, address_id: int) -> dict[str, Any]:
    row = _own(session, user_id, address_id)
    if not row.is_default:
        _clear_default(session, user_id)
        row.is_default = True
        row.updated_at = utcnow()
        session.flush()
    return address_dict(row)


def delete_address(session: Session, user_id: int, address_id: int) -> None:
    row = _own(session, user_id, address_id)
    was_default = row.is_default
    session.delete(row)
    session.flush()
    if was_default:
        successor = session.execute(
            select(Address)
            .where(Address.user_id == user_id)
            .order_by(Address.updated_at.desc(), Address.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if successor is not None:
            successor.is_default = True
            session.flush()
