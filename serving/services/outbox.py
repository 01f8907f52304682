"""The outbox worker: delivers queued emails over SMTP, retrying with backoff.

Claiming a message is a conditional UPDATE to ``sending`` with a lease, so two workers never
send the same row at once. Sending and marking ``sent`` cannot be one atomic step, so a worker
that dies in between leaves the row ``sending``; when the lease runs out another pass sends it
again, with the same ``Message-ID`` (and ``X-Storeloop-Attempt``) so the receiving side can
recognise the redelivery and keep one copy. That is at-least-once on the wire and exactly once
in a mailbox that dedupes by Message-ID (docs/checkout.md explains the choice).

Without ``SMTP_URL`` mail is written as ``.eml`` files under ``DATA_DIR/mail``.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from datetime import timedelta
from email import charset as email_charset
from email.header import Header
from email.message import Message
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import and_, or_, select, update

from serving.core.clock import utcnow
from serving.core.config import Settings
from serving.db.engine import Database
from serving.db.tables.notifications import OutboxMessage

log = logging.getLogger("storeloop.outbox")

# Quoted-printable keeps the mostly-ASCII bodies readable on the wire (utf-8's default is
# base64). The compat32 ``Message`` is used rather than ``EmailMessage``: the latter parses
# every header through the header registry, about 1 ms per mail, which at checkout rates was a
# tenth of a worker's CPU; what goes on the wire is the same.
_UTF8_QP = email_charset.Charset("utf-8")
_UTF8_QP.body_encoding = email_charset.QP


def render_email(
    *, sender: str, to_addr: str, subject: str, message_id: str, attempt: int, body: str
) -> Message:
    """A plain-text mail with the redelivery-detection headers (Message-ID, attempt)."""
    email = Message()
    email["From"] = sender
    email["To"] = to_addr
    email["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")
    email["Message-ID"] = message_id
    email["X-Storeloop-Attempt"] = str(attempt)
    email["MIME-Version"] = "1.0"
    email.set_payload(body if body.endswith("\n") else body + "\n", _UTF8_QP)
    return email


class _Mailer:
    """Where one pass's mails go: a single SMTP session for the whole pass (opened on the
    first mail, closed at the end) instead of a connection per mail, or the mail folder."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def send(self, email: Message, to_addr: str, message_id: str) -> None:
        if not self.settings.smtp_url:
            folder = Path(self.settings.data_dir) / "mail"
            folder.mkdir(parents=True, exist_ok=True)
            name = message_id.strip("<>").replace("@", "_").replace("/", "_")
            (folder / f"{name}.eml").write_bytes(email.as_bytes())
            return
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            self._smtp.send_message(email, to_addrs=[to_addr])
        except (smtplib.SMTPServerDisconnected, OSError):
            self.close()  # the session died: the next mail (or retry) opens a new one
            raise

    def _connect(self) -> smtplib.SMTP:
        url = urlsplit(self.settings.smtp_url or "")
        smtp_cls = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
        smtp = smtp_cls(url.hostname or "127.0.0.1", url.port or 25, timeout=10)
        try:
            if url.scheme == "smtp+starttls":
                smtp.starttls()
            if url.username:
                smtp.login(url.username, url.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None


def _due_at(now):
    """Pending and due, or claimed by a worker whose lease ran out."""
    return or_(
        and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.status == "sending", OutboxMessage.lease_until < now),
    )


class SimulatedCrash(RuntimeError):
    """A test hook's stand-in for the worker process dying."""


class OutboxWorker:
    def __init__(self, db: Database, settings: Settings, *, hooks: dict[str, str] | None = None):
        self.db = db
        self.settings = settings
        self.hooks = hooks or {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- one pass

    def run_once(self, limit: int = 50) -> int:
        """Send what is due; returns how many messages were sent.

        The due messages are claimed in one statement and the sent ones marked in one, so a
        busy outbox costs two write transactions per pass rather than two per email. A worker
        that dies between sending and marking leaves its claimed rows ``sending``; once their
        lease runs out they are sent again with the same Message-ID, as before.
        """
        due = self._due(limit)
        if not due:
            return 0
        claimed = self._claim_many(due)
        if not claimed:
            return 0
        with self.db.session() as s:
            rows = list(
                s.execute(
                    select(OutboxMessage)
                    .where(OutboxMessage.id.in_(claimed))
                    .order_by(OutboxMessage.id)
                ).scalars()
            )
        sent: list[int] = []
        mailer = _Mailer(self.settings)
        try:
            for row in rows:
                if self._deliver(row, mailer):
                    sent.append(row.id)
        finally:
            mailer.close()
        if sent:
            with self.db.write_gate(), self.db.transaction() as s:
                s.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(sent))
                    .values(status="sent", sent_at=utcnow(), lease_until=None, last_error="")
                )
        return len(sent)

    def _due(self, limit: int) -> list[int]:
        now = utcnow()
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(OutboxMessage.id)
                    .where(_due_at(now))
                    .order_by(OutboxMessage.id)
                    .limit(limit)
                )
            )

    def _claim_many(self, message_ids: list[int]) -> list[int]:
        """Take a lease on those of ``message_ids`` still due (conditional, so two workers
        never hold one message); returns the ids this worker got."""
        now = utcnow()
        with self.db.write_gate(), self.db.transaction() as s:
            taken = s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(message_ids), _due_at(now))
                .values(
                    status="sending",
                    attempts=OutboxMessage.attempts + 1,
                    lease_until=now + timedelta(seconds=self.settings.outbox_lease_seconds),
                )
                .returning(OutboxMessage.id)
            )
            return sorted(taken.scalars())

    def _deliver(self, row: OutboxMessage, mailer: _Mailer) -> bool:
        """Transmit one claimed message; a failure is backed off here, a success is marked by
        the caller together with the rest of the batch."""
        message_id = row.id
        if row.attempts > 1:
            log.info("redelivering %s (attempt %d)", row.message_id, row.attempts)
        email = render_email(
            sender=self.settings.mail_from,
            to_addr=row.to_addr,
            subject=row.subject,
            message_id=row.message_id,
            attempt=row.attempts,
            body=row.body,
        )
        try:
            mailer.send(email, row.to_addr, row.message_id)
        except SimulatedCrash:
            raise
        except Exception as exc:  # network, SMTP refusal: back off and retry later
            delay = min(2**row.attempts, 3600)
            final = row.attempts >= self.settings.outbox_max_attempts
            with self.db.write_gate(), self.db.transaction() as s:
                s.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == message_id, OutboxMessage.status == "sending")
                    .values(
                        status="failed" if final else "pending",
                        next_attempt_at=utcnow() + timedelta(seconds=delay),
                        lease_until=None,
                        last_error=f"{type(exc).__name__}: {exc}"[:500],
                    )
                )
            log.warning("sending %s failed (attempt %d): %s", row.message_id, row.attempts, exc)
            return False
        if "crash_after_smtp_send" in self.hooks:
            raise SimulatedCrash(f"test hook: died after sending {row.message_id}")
        return True

    # ---------------------------------------------------------------- thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.run_once()
            except Exception:
                log.exception("outbox pass failed")
                sent = 0
            if not sent:
                self._stop.wait(self.settings.outbox_poll_seconds)
