"""Drill: the SMTP server is down, then refuses mail, then fails half-way through a pass.

Pass: every email stays in the outbox (``pending``, attempts counted, error kept) for as long
as the server does not take it; once it is back each email is accepted by the server exactly
once (not merely deduplicated by Message-ID), rows end ``sent``, and later passes send nothing.
``tests/checkout/test_outbox.py`` covers the other half: a worker killed between sending and
marking, whose redelivery the mailbox recognises by Message-ID.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from devtools.server import free_port
from serving.core.clock import reset_simulated_now, set_simulated_now, utcnow
from serving.db.tables.notifications import OutboxMessage
from serving.services.infra.outbox import OutboxWorker
from tests.checkout.conftest import order_body, place, tokenise


@pytest.fixture
def settings(settings):
    settings.outbox_poll_seconds = 3600  # the app's own worker stays out of the way
    return settings


class Relay:
    """An SMTP server that accepts ``budget`` more messages (all when None), then answers
    451 (try later); it counts what it accepted per Message-ID."""

    def __init__(self) -> None:
        self.accepted: Counter[str] = Counter()
        self.refused = 0
        self.budget: int | None = None

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        if self.budget is not None:
            if self.budget <= 0:
                self.refused += 1
                return "451 4.3.0 Mail server temporarily unavailable"
            self.budget -= 1
        self.accepted[message_from_bytes(envelope.content)["Message-ID"]] += 1
        return "250 OK"


@contextmanager
def running(relay: Relay, port: int):
    controller = Controller(relay, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield
    finally:
        controller.stop()


class Later:
    """Steps the shop's clock past the outbox's backoff (the worker runs in this thread)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def pass_(self, worker: OutboxWorker) -> int:
        self.offset += timedelta(hours=2)  # beyond the longest backoff (1 h)
        token = set_simulated_now(utcnow() + self.offset)
        try:
            return worker.run_once()
        finally:
            reset_simulated_now(token)


def _rows(app) -> list[OutboxMessage]:
    with app.state.components.db.session() as s:
        return list(s.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars())


def test_mail_is_kept_through_an_smtp_outage_and_delivered_exactly_once(
    app, client, customer, make_product
):
    pid = make_product(10)
    for _ in range(3):
        assert place(customer, order_body(tokenise(client), [(pid, 1)])).status_code == 201
    ids = [row.message_id for row in _rows(app)]
    assert len(ids) == 3
    port = free_port()
    settings = app.state.components.settings.model_copy(
        update={"smtp_url": f"smtp://127.0.0.1:{port}"}
    )
    worker, later, relay = OutboxWorker(app.state.components.db, settings), Later(), Relay()

    # 1. Nothing listens on the port: every pass fails, every mail stays.
    for attempt in (1, 2):
        assert later.pass_(worker) == 0
        rows = _rows(app)
        assert {(r.status, r.attempts) for r in rows} == {("pending", attempt)}
        assert all(r.last_error.startswith("ConnectionRefusedError") for r in rows)

    with running(relay, port):
        # 2. The server is up but refuses mail for now (451): still kept, nothing accepted.
        relay.budget = 0
        assert later.pass_(worker) == 0
        assert relay.refused == 3 and not relay.accepted
        assert {(r.status, r.attempts) for r in _rows(app)} == {("pending", 3)}
        assert all(r.last_error.startswith("SMTPDataError") for r in _rows(app))

        # 3. It takes one mail, then fails again in the middle of the pass.
        relay.budget = 1
        assert later.pass_(worker) == 1
        assert sorted(r.status for r in _rows(app)) == ["pending", "pending", "sent"]

        # 4. Back for good: the rest goes out, and nothing is sent twice.
        relay.budget = None
        assert later.pass_(worker) == 2
        for _ in range(2):
            assert later.pass_(worker) == 0
    assert relay.accepted == Counter({message_id: 1 for message_id in ids})
    assert {r.status for r in _rows(app)} == {"sent"}
