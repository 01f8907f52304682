"""The outbox worker: delivers queued emails over SMTP, retrying with backoff.

Claiming a message is a conditional UPDATE to ``sending`` with a lease, so two workers never
send the same row at once. Sending and marking ``sent`` cannot be one atomic step, so a worker
that dies in between leaves the row ``sending``; when the lease runs out another pass sends it
again, with the same ``Message-ID`` (and ``X-Storeloop-Attempt``) so the receiving side can
recognise the redelivery and keep one copy. That is at-least-once on the wire and exactly once
in a mailbox that dedupes by Message-ID (docs/checkout.md explains the choice).

Without ``SMTP_URL`` mail is appended to one mbox file a day under ``DATA_DIR/mail`` (any mail
client opens it; Python's ``mailbox.mbox`` reads it). A file per mail cost 0.3–0.5 ms of kernel
CPU each on this machine's ext4, a tenth of the whole checkout's CPU; an append costs 2 µs. A
redelivery after a crash appends a second copy with the same Message-ID, as SMTP would.

Cost: at a steady checkout rate the worker makes many small passes, so what a pass costs
apart from its mails matters as much as the mails. A pass is one read (what is due), then for
a non-empty one a write transaction that claims and returns the rows to send, and one that
records the outcome of the whole pass (sent rows and backed-off failures together). All are
prebuilt Core statements on a plain connection: no ORM session, no statement built per pass.
Mails are rendered straight to bytes when the email package's output is known to be the same.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import threading
import time
from datetime import timedelta
from email import charset as email_charset
from email.header import Header
from email.message import Message
from email.utils import getaddresses
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Row, and_, bindparam, or_, select, update

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


# A header the compat32 generator writes unchanged: ASCII, one short line (it folds at 78
# characters), no runs of blanks or blanks at either end (which folding may rewrite), nothing
# that looks like an RFC 2047 encoded word (which Header re-splits).
_PLAIN_HEADER = re.compile(r"[!-~]+(?: [!-~]+)*\Z")
_MAX_HEADER_LINE = 78


def _plain(name: str, value: str) -> bool:
    return (
        len(name) + 2 + len(value) <= _MAX_HEADER_LINE
        and _PLAIN_HEADER.match(value) is not None
        and "=?" not in value
    )


def render_email_bytes(
    *,
    sender: str,
    to_addr: str,
    subject: str,
    message_id: str,
    attempt: int,
    body: str,
    linesep: str = "\n",
) -> bytes | None:
    """The bytes ``render_email(...)`` flattens to (``as_bytes()`` for ``"\\n"``, what
    ``smtplib.send_message`` transmits for ``"\\r\\n"``), built without the email package's
    generator and header folding, which cost more CPU than the rest of a delivery.

    None when the mail needs the general path: a header that is not ASCII or would be folded,
    or (on the wire, where the generator escapes them) a body line starting with ``From ``.
    ``tests/checkout/test_outbox.py`` checks the equivalence.
    """
    headers = (
        ("From", sender),
        ("To", to_addr),
        ("Subject", subject),
        ("Message-ID", message_id),
    )
    for name, value in headers:
        if not _plain(name, value):
            return None
    payload = _UTF8_QP.body_encode(body if body.endswith("\n") else body + "\n")
    if linesep != "\n":
        if payload.startswith("From ") or "\nFrom " in payload:
            return None  # smtplib's generator mangles these to ">From "
        payload = payload.replace("\n", linesep)
    nl = linesep
    return (
        f"From: {sender}{nl}To: {to_addr}{nl}Subject: {subject}{nl}Message-ID: {message_id}{nl}"
        f"X-Storeloop-Attempt: {attempt}{nl}MIME-Version: 1.0{nl}"
        f'Content-Type: text/plain; charset="utf-8"{nl}'
        f"Content-Transfer-Encoding: quoted-printable{nl}{nl}{payload}"
    ).encode("ascii", "surrogateescape")


def mbox_entry(data: bytes, envelope_from: str, when: time.struct_time) -> bytes:
    """One message as an mbox entry: the ``From `` separator line, the message, and the blank
    line that ends it. A body line starting with ``From `` would read as a new message; in a
    quoted-printable body (every mail here) its ``F`` is written ``=46``, which decodes back to
    the same text, elsewhere the line is quoted as ``>From `` (mboxo)."""
    separator = f"From {envelope_from or 'MAILER-DAEMON'} {time.asctime(when)}\n".encode()
    text = data.replace(b"\r\n", b"\n")
    head, _, body = text.partition(b"\n\n")
    quoted_printable = b"\ncontent-transfer-encoding: quoted-printable" in b"\n" + head.lower()
    escape = b"=46rom " if quoted_printable else b">From "
    if body.startswith(b"From "):
        body = escape + body[5:]
    text = head + b"\n\n" + body.replace(b"\nFrom ", b"\n" + escape)
    return separator + text + (b"\n" if text.endswith(b"\n") else b"\n\n")


class _Mailer:
    """Where one pass's mails go: a single SMTP session for the whole pass (opened on the
    first mail, closed at the end) instead of a connection per mail, or the mail folder."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None
        self._mbox: int | None = None  # today's mbox, open for the pass
        self._envelope_from: str | None = None

    def send(self, row: Row, sender: str) -> None:
        """Render and deliver one claimed row (``to_addr``, ``subject``, ``message_id``,
        ``attempts``, ``body``)."""
        if not self.settings.smtp_url:
            data = render_email_bytes(
                sender=sender,
                to_addr=row.to_addr,
                subject=row.subject,
                message_id=row.message_id,
                attempt=row.attempts,
                body=row.body,
            )
            if data is None:
                data = self._email(row, sender).as_bytes()
            self._append(data, sender)
            return
        if self._smtp is None:
            self._smtp = self._connect()
        data = render_email_bytes(
            sender=sender,
            to_addr=row.to_addr,
            subject=row.subject,
            message_id=row.message_id,
            attempt=row.attempts,
            body=row.body,
            linesep="\r\n",
        )
        try:
            if data is None or not row.to_addr.isascii():
                self._smtp.send_message(self._email(row, sender), to_addrs=[row.to_addr])
            else:
                self._smtp.sendmail(self._sender_address(sender), [row.to_addr], data)
        except (smtplib.SMTPServerDisconnected, OSError):
            self.close()  # the session died: the next mail (or retry) opens a new one
            raise

    @staticmethod
    def _email(row: Row, sender: str) -> Message:
        return render_email(
            sender=sender,
            to_addr=row.to_addr,
            subject=row.subject,
            message_id=row.message_id,
            attempt=row.attempts,
            body=row.body,
        )

    def _sender_address(self, sender: str) -> str:
        """The envelope sender ``send_message`` would take from the From header."""
        if self._envelope_from is None:
            self._envelope_from = getaddresses([sender])[0][1]
        return self._envelope_from

    def _append(self, data: bytes, sender: str) -> None:
        """Append one mail to today's mbox, in one ``write`` on an ``O_APPEND`` descriptor:
        the workers of every process can append to the same file without interleaving."""
        if self._mbox is None:
            folder = self.settings.layout.mail
            folder.mkdir(parents=True, exist_ok=True)
            day = time.strftime("%Y-%m-%d", time.gmtime())
            self._mbox = os.open(
                folder / f"outbox-{day}.mbox",
                os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                0o644,
            )
        entry = mbox_entry(data, self._sender_address(sender), time.gmtime())
        written = os.write(self._mbox, entry)
        if written != len(entry):  # pragma: no cover - a full disk; the pass is retried
            raise OSError(f"mbox append wrote {written} of {len(entry)} bytes")

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
        if self._mbox is not None:
            os.close(self._mbox)
            self._mbox = None
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None


# ------------------------------------------------------------------ prebuilt statements

_T = OutboxMessage.__table__
_C = _T.c


def _due_at():
    """Pending and due, or claimed by a worker whose lease ran out (at ``b_now``)."""
    return or_(
        and_(_C.status == "pending", _C.next_attempt_at <= bindparam("b_now")),
        and_(_C.status == "sending", _C.lease_until < bindparam("b_now")),
    )


_DUE = select(_C.id).where(_due_at()).order_by(_C.id).limit(bindparam("b_limit"))

# Claims those of the ids still due (conditional, so two workers never hold one message) and
# returns what sending them needs, with the attempt number this delivery is. On PostgreSQL the
# rows are taken with SKIP LOCKED: a row another worker is claiming or marking right now is
# left to it, so a claim never waits. Waiting, it could wait on a worker's "sent" UPDATE that
# in turn waited on this claim's rows: two workers' outboxes deadlocked that way (1 s each,
# PostgreSQL's deadlock_timeout) in every checkout benchmark run. SQLite has one writer.
_CLAIMABLE = (
    select(_C.id)
    .where(_C.id.in_(bindparam("b_ids", expanding=True)), _due_at())
    .with_for_update(skip_locked=True)
)
_CLAIM = (
    update(_T)
    .where(_C.id.in_(_CLAIMABLE.scalar_subquery()), _due_at())
    .values(
        status="sending",
        attempts=_C.attempts + 1,
        lease_until=bindparam("b_lease_until", type_=_C.lease_until.type),
    )
    .returning(_C.id, _C.message_id, _C.to_addr, _C.subject, _C.body, _C.attempts)
)

_MARK_SENT = (
    update(_T)
    .where(_C.id.in_(bindparam("b_ids", expanding=True)))
    .values(
        status="sent",
        sent_at=bindparam("b_now", type_=_C.sent_at.type),
        lease_until=None,
        last_error="",
    )
)

# One row per failed delivery, run as one executemany: only while this worker's claim stands.
_BACK_OFF = (
    update(_T)
    .where(_C.id == bindparam("b_id"), _C.status == "sending")
    .values(
        status=bindparam("b_status", type_=_C.status.type),
        next_attempt_at=bindparam("b_next", type_=_C.next_attempt_at.type),
        lease_until=None,
        last_error=bindparam("b_error", type_=_C.last_error.type),
    )
)


class SimulatedCrash(RuntimeError):
    """A test hook's stand-in for the worker process dying."""


class OutboxWorker:
    def __init__(self, db: Database, settings: Settings, *, hooks: dict[str, str] | None = None):
        self.db = db
        self.settings = settings
        self.hooks = hooks or {}
        self._writes = db.engine.execution_options(sqlite_immediate=True)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- one pass

    def run_once(self, limit: int = 50) -> int:
        """Send what is due; returns how many messages were sent."""
        return self._pass(limit)[1]

    def _pass(self, limit: int) -> tuple[int, int]:
        """One pass: (how many messages were due, up to ``limit``; how many were sent).

        The due messages are claimed in one statement and the outcome of the pass (sent rows,
        backed-off failures) recorded in one transaction, so a busy outbox costs two write
        transactions per pass rather than two per email. A worker that dies between sending
        and marking leaves its claimed rows ``sending``; once their lease runs out they are
        sent again with the same Message-ID.
        """
        due = self._due(limit)
        if not due:
            return 0, 0
        rows = self._claim_many(due)
        if not rows:
            return len(due), 0
        sent: list[int] = []
        failed: list[dict[str, Any]] = []
        mailer = _Mailer(self.settings)
        try:
            for row in rows:
                failure = self._deliver(row, mailer)
                if failure is None:
                    sent.append(row.id)
                else:
                    failed.append(failure)
        finally:
            mailer.close()
        self._record(sent, failed)
        return len(due), len(sent)

    def _due(self, limit: int) -> list[int]:
        with self.db.engine.connect() as conn:
            return list(conn.execute(_DUE, {"b_now": utcnow(), "b_limit": limit}).scalars())

    def _claim_many(self, message_ids: list[int]) -> list[Row]:
        """Take a lease on those of ``message_ids`` still due; returns the rows this worker
        got (in id order), with their new attempt count."""
        now = utcnow()
        lease_until = now + timedelta(seconds=self.settings.outbox_lease_seconds)
        with self.db.write_gate(), self._writes.begin() as conn:
            taken = conn.execute(
                _CLAIM, {"b_ids": message_ids, "b_now": now, "b_lease_until": lease_until}
            ).all()
        taken.sort(key=lambda row: row.id)
        return taken

    def _record(self, sent: list[int], failed: list[dict[str, Any]]) -> None:
        if not sent and not failed:
            return
        with self.db.write_gate(), self._writes.begin() as conn:
            if sent:
                conn.execute(_MARK_SENT, {"b_ids": sent, "b_now": utcnow()})
            if failed:
                conn.execute(_BACK_OFF, failed)

    def _deliver(self, row: Row, mailer: _Mailer) -> dict[str, Any] | None:
        """Transmit one claimed message; None when it went out, else the backoff to record
        (with the rest of the pass's outcome)."""
        if row.attempts > 1:
            log.info("redelivering %s (attempt %d)", row.message_id, row.attempts)
        try:
            mailer.send(row, self.settings.mail_from)
        except SimulatedCrash:
            raise
        except Exception as exc:  # network, SMTP refusal: back off and retry later
            delay = min(2**row.attempts, 3600)
            final = row.attempts >= self.settings.outbox_max_attempts
            log.warning("sending %s failed (attempt %d): %s", row.message_id, row.attempts, exc)
            return {
                "b_id": row.id,
                "b_status": "failed" if final else "pending",
                "b_next": utcnow() + timedelta(seconds=delay),
                "b_error": f"{type(exc).__name__}: {exc}"[:500],
            }
        if "crash_after_smtp_send" in self.hooks:
            raise SimulatedCrash(f"test hook: died after sending {row.message_id}")
        return None

    # ---------------------------------------------------------------- thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, limit: int = 50) -> None:
        """Pass after pass while they come back full; otherwise sleep a poll interval. Going
        straight on after a partial pass would mostly find nothing (or the one mail queued
        meanwhile) and cost a pass for it; a mail queued now waits at most the poll interval,
        as one queued while the worker sleeps always did."""
        while not self._stop.is_set():
            try:
                due, sent = self._pass(limit)
            except Exception:
                log.exception("outbox pass failed")
                due, sent = 0, 0
            if not sent or due < limit:
                self._stop.wait(self.settings.outbox_poll_seconds)
