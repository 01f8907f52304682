"""The outbox over real SMTP (aiosmtpd): retries, and exactly one copy after a crash.

The test mailbox keeps messages by Message-ID, as real mail stores do; the worker resends a
message whose send was not marked with the same Message-ID, so the crash between "sent" and
"marked" produces a redelivery the mailbox recognises instead of a second email.
"""

from __future__ import annotations

from datetime import timedelta
from mailbox import mbox
from types import SimpleNamespace

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from devtools.server import free_port
from serving.core.clock import reset_simulated_now, set_simulated_now, utcnow
from serving.db.tables.notifications import OutboxMessage
from serving.services.infra.outbox import OutboxWorker, SimulatedCrash

from .conftest import order_body, place, tokenise


@pytest.fixture
def settings(settings):
    """The app's own outbox worker makes one pass at start-up, then sleeps: these tests drive
    their own workers and must not race it."""
    settings.outbox_poll_seconds = 3600
    return settings


class Mailbox:
    """An SMTP handler that files each Message-ID once and counts deliveries."""

    def __init__(self) -> None:
        self.by_id: dict[str, bytes] = {}
        self.deliveries = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        from email import message_from_bytes

        self.deliveries += 1
        message_id = message_from_bytes(envelope.content)["Message-ID"]
        self.by_id.setdefault(message_id, envelope.content)
        return "250 OK"


@pytest.fixture
def mailbox():
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    box.url = f"smtp://127.0.0.1:{port}"
    yield box
    controller.stop()


def test_order_email_delivered_once_even_if_worker_dies_after_send(
    app, client, customer, make_product, mailbox
):
    pid = make_product(2)
    assert place(customer, order_body(tokenise(client), [(pid, 1)])).status_code == 201
    settings = app.state.components.settings.model_copy(update={"smtp_url": mailbox.url})
    crashing = OutboxWorker(app.state.components.db, settings, hooks={"crash_after_smtp_send": ""})
    with pytest.raises(SimulatedCrash):
        crashing.run_once()
    assert mailbox.deliveries == 1
    with app.state.components.db.session() as s:
        row = s.execute(
            select(OutboxMessage).where(OutboxMessage.kind == "order_confirmed")
        ).scalar_one()
    assert row.status == "sending"  # sent, never marked: the crash window
    restarted = OutboxWorker(app.state.components.db, settings)
    assert restarted.run_once() == 0  # the lease still protects it
    token = set_simulated_now(utcnow() + timedelta(seconds=settings.outbox_lease_seconds + 1))
    try:
        assert restarted.run_once() == 1
    finally:
        reset_simulated_now(token)
    assert mailbox.deliveries == 2  # redelivered on the wire...
    assert list(mailbox.by_id) == [row.message_id]  # ...one copy in the mailbox
    with app.state.components.db.session() as s:
        row = s.execute(select(OutboxMessage).where(OutboxMessage.id == row.id)).scalar_one()
    assert row.status == "sent" and row.attempts == 2


def test_unreachable_smtp_is_retried_with_backoff(app, client, customer, make_product):
    pid = make_product(2)
    place(customer, order_body(tokenise(client), [(pid, 1)]))
    settings = app.state.components.settings.model_copy(
        update={"smtp_url": f"smtp://127.0.0.1:{free_port()}"}
    )
    worker = OutboxWorker(app.state.components.db, settings)
    assert worker.run_once() == 0
    with app.state.components.db.session() as s:
        row = s.execute(select(OutboxMessage)).scalar_one()
    assert row.status == "pending" and row.attempts == 1 and row.last_error
    assert row.next_attempt_at > utcnow()
    assert worker.run_once() == 0  # not due yet


def test_without_smtp_url_mail_is_written_under_data_dir(app, client, customer, make_product):
    pid = make_product(2)
    place(customer, order_body(tokenise(client), [(pid, 1)]))
    worker = OutboxWorker(app.state.components.db, app.state.components.settings)
    assert worker.run_once() == 1
    files = list((app.state.components.settings.data_dir / "mail").glob("outbox-*.mbox"))
    assert len(files) == 1
    (mail,) = mbox(files[0])
    assert mail["To"] == customer.email and mail["Message-ID"]
    assert "is confirmed" in mail["Subject"]
    assert "received your payment" in mail.get_payload(decode=True).decode()


def test_the_mail_folder_is_an_mbox_that_reads_back_every_mail_as_sent(app, tmp_path):
    """Mails appended by two passes (a redelivery among them) read back from the mbox with
    their headers, and body lines starting with ``From `` survive the mbox quoting."""
    from serving.services.infra.outbox import _Mailer

    settings = app.state.components.settings.model_copy(
        update={"data_dir": tmp_path, "smtp_url": None}
    )
    bodies = ["Plain body", "From now on\nFrom here.\n>From quoted", "Ünïcode = 12 €"]
    for attempt in (1, 2):
        mailer = _Mailer(settings)
        try:
            for i, body in enumerate(bodies):
                row = SimpleNamespace(
                    to_addr=f"user{i}@example.com",
                    subject=f"Mail {i}",
                    message_id=f"<m{i}@storeloop.test>",
                    attempts=attempt,
                    body=body,
                )
                mailer.send(row, "Storeloop <shop@storeloop.dev>")
        finally:
            mailer.close()
    (path,) = (tmp_path / "mail").glob("outbox-*.mbox")
    mails = list(mbox(path))
    assert [(m["Message-ID"], m["X-Storeloop-Attempt"]) for m in mails] == [
        (f"<m{i}@storeloop.test>", str(attempt)) for attempt in (1, 2) for i in range(3)
    ]
    for mail, body in zip(mails, bodies * 2, strict=True):
        text = mail.get_payload(decode=True).decode("utf-8")
        assert text.rstrip("\n") == body
        assert mail.get_from().startswith("shop@storeloop.dev ")


def _wire_bytes(email) -> bytes:
    """What ``smtplib.SMTP.send_message`` transmits for ``email`` (before dot-stuffing)."""
    import io
    from email.generator import BytesGenerator

    out = io.BytesIO()
    BytesGenerator(out).flatten(email, linesep="\r\n")
    return out.getvalue()


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"sender": "Storeloop <shop@storeloop.dev>", "attempt": 7},
        {"body": "Refund = 12.99 EUR   \nFrom now on\n.\n" + "long " * 40},
        {"body": "Grüße, €5\r\nzurück\n\n"},
        {"subject": "Ihre Bestellung ist bestätigt"},
        {"subject": "A subject long enough to be folded by the generator, " * 2},
        {"subject": "spaced  out "},
        {"subject": "=?utf-8?q?looks_encoded?="},
        {"to_addr": "jörg@example.com"},
    ],
)
def test_fast_rendering_matches_the_email_package(fields):
    from serving.services.infra.outbox import render_email, render_email_bytes

    kw = {
        "sender": "shop@storeloop.dev",
        "to_addr": "ann@example.com",
        "subject": "Your order ord_1 is confirmed",
        "message_id": "<0123abcd.order_confirmed@storeloop.dev>",
        "attempt": 1,
        "body": "Thank you! We received your payment of 12.99 EUR for order ord_1.",
        **fields,
    }
    email = render_email(**kw)
    as_file = render_email_bytes(**kw)
    on_wire = render_email_bytes(**kw, linesep="\r\n")
    assert as_file is None or as_file == email.as_bytes()
    assert on_wire is None or on_wire == _wire_bytes(email)
    if not fields or "attempt" in fields:
        assert as_file is not None and on_wire is not None  # the checkout's mails: fast path


def test_a_claim_skips_messages_another_worker_holds_instead_of_waiting(app, backend):
    """Two workers' outboxes deadlocked on PostgreSQL: one's claim waited on rows the other
    was marking sent, whose UPDATE waited on the first's claim. A claim now leaves a row
    another transaction holds to that transaction, and takes the rest at once."""
    import threading

    from sqlalchemy import insert, text, update

    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: nothing to skip")
    db = app.state.components.db
    now = utcnow()
    rows = [
        {
            "message_id": f"<skip-{i}@storeloop.test>",
            "kind": "test",
            "order_id": None,
            "to_addr": "someone@example.com",
            "subject": "s",
            "body": "b",
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now - timedelta(seconds=1),
            "lease_until": None,
            "last_error": "",
            "created_at": now,
            "sent_at": None,
        }
        for i in range(2)
    ]
    with db.engine.begin() as conn:
        ids = list(conn.execute(insert(OutboxMessage).returning(OutboxMessage.id), rows).scalars())
    worker = OutboxWorker(db, app.state.components.settings)
    claimed: list = []
    held = db.engine.connect()
    try:
        held.begin()
        # Another worker in the middle of writing the first message (uncommitted).
        held.execute(
            update(OutboxMessage).where(OutboxMessage.id == ids[0]).values(last_error="busy")
        )
        thread = threading.Thread(target=lambda: claimed.extend(worker._claim_many(ids)))
        thread.start()
        thread.join(timeout=15)
        waited = thread.is_alive()
    finally:
        held.rollback()
        held.close()
    thread.join(timeout=30)
    assert not waited, "the claim waited for the row another transaction held"
    assert [row.id for row in claimed] == [ids[1]]
    with db.engine.connect() as conn:
        status = dict(conn.execute(text("SELECT id, status FROM outbox_messages")).all())
    assert status[ids[0]] == "pending" and status[ids[1]] == "sending"
