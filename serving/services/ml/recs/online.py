"""Online evaluation of recommendations: live click-through per version and surface, and A/B.

The warehouse's CTR (``ops_report.online_ctr``) moves only after a pipeline run; an operator
watching a new model wants to see it move now. So:

* every answer's ``rec_id`` carries what was served: ``<hex>.<surface>.<model version>``,
  signed (``RecIds``). Impressions and clicks echo the ``rec_id`` back, so each event says
  which version and surface it belongs to without trusting anything else the client sends,
  and without a lookup table shared between workers;
* ``OnlineCounters`` counts impressions and clicks per (version, surface) as the events route
  accepts them (after they are durable), skipping event ids it has just counted (a client
  retry). Each worker writes its counters to ``DATA_DIR/recs/online/<worker>.json`` about once
  a second and the ops page sums every worker's file, so the figures are the whole shop's;
* ``ABSplit`` sends a fixed share of users (by a hash of the user id, or of the session id for
  anonymous shoppers) to a second published version; ``ab_report`` puts the two arms side by
  side with a two-proportion z-test on their CTR.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import re
import secrets
import threading
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from features.rec_ids import SURFACES, RecIdVerifier, ServedAs

log = logging.getLogger("storeloop.recs")

_MAX_LABEL = 90  # rec ids may be 128 characters; longer labels are not embedded
_SEEN_EVENTS = 50_000  # rec events whose ids are remembered (a retry comes within seconds)
_ID_CHARS = re.compile(r"^[A-Za-z0-9_:\-]+$")  # what an event id field accepts, minus "."
# A nonce only has to make each id unique (the MAC is what a client cannot forge): a random
# per-process prefix and a counter, like request ids, instead of a read of the kernel's random
# source on every answer (a syscall that also gave the GIL away to background threads).
_NONCE_PREFIX = secrets.token_hex(4)
_NONCE_COUNTER = itertools.count(1)


#: What one served list was: its surface and the model version that produced it.
RecId = ServedAs


class RecIds(RecIdVerifier):
    """Mints rec ids ``<nonce><mac>.<surface>.<version>``; reads them as ``features.rec_ids``
    does (one format, one MAC: the warehouse verifies what the shop minted).

    The MAC (HMAC-SHA256 under a key derived from the shop's signing secret, shared by every
    worker) means a client cannot credit a version with made-up impressions or clicks: an id
    the shop did not mint is not counted.
    """

    def new(self, surface: str, version: str) -> str:
        """A unique rec id that names the surface and version (plain hex if it cannot)."""
        nonce = f"{_NONCE_PREFIX}{next(_NONCE_COUNTER) & 0xFFFFFFFF:08x}"
        if surface not in SURFACES or len(version) > _MAX_LABEL or not _ID_CHARS.match(version):
            return nonce + secrets.token_hex(8)
        return self.sign(surface, version, nonce)


class OnlineCounters:
    """Impressions and clicks per (version, surface) in this worker, shared through files."""

    def __init__(self, folder: Path | None, rec_ids: RecIds) -> None:
        self.folder = folder
        self.rec_ids = rec_ids
        self.worker = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.started = time.time()
        self._counts: dict[tuple[str, str], list[int]] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._dirty = False

    def record(self, records: Iterable[dict[str, Any]]) -> int:
        """Count accepted ``rec_impression`` / ``rec_click`` events; returns how many counted."""
        counted = 0
        for r in records:
            kind = r.get("type")
            if kind not in ("rec_impression", "rec_click"):
                continue
            served = self.rec_ids.parse(r.get("rec_id"))
            if served is None:
                continue
            event_id = str(r.get("event_id") or "")
            with self._lock:
                if event_id:
                    if event_id in self._seen:
                        continue
                    self._seen[event_id] = None
                    if len(self._seen) > _SEEN_EVENTS:
                        self._seen.popitem(last=False)
                slot = self._counts.setdefault((served.version, served.surface), [0, 0])
                slot[0 if kind == "rec_impression" else 1] += 1
                self._dirty = True
            counted += 1
        return counted

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            rows = [[v, s, n[0], n[1]] for (v, s), n in self._counts.items()]
        return {"worker": self.worker, "started": self.started, "counts": rows}

    def flush(self) -> None:
        """Write this worker's counters if they changed (the recs loop calls it every pass)."""
        if self.folder is None or not self._dirty:
            return
        self._dirty = False
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            target = self.folder / f"{self.worker}.json"
            tmp = target.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.snapshot()))
            os.replace(tmp, target)
        except OSError as exc:  # the page loses a second of figures, the shop goes on
            self._dirty = True
            log.warning("online counters not written: %s", exc)

    def totals(self) -> tuple[dict[tuple[str, str], list[int]], float]:
        """Counts summed over every worker's file (this worker's from memory) and since when."""
        merged: dict[tuple[str, str], list[int]] = {}
        since = self.started
        snapshots = [self.snapshot()]
        if self.folder is not None and self.folder.is_dir():
            for path in self.folder.glob("*.json"):
                if path.stem == self.worker:
                    continue
                try:
                    snapshots.append(json.loads(path.read_text()))
                except (OSError, ValueError):
                    continue  # being replaced right now: next refresh of the page has it
        for snap in snapshots:
            since = min(since, float(snap.get("started", since)))
            for version, surface, shown, clicked in snap.get("counts", []):
                slot = merged.setdefault((str(version), str(surface)), [0, 0])
                slot[0] += int(shown)
                slot[1] += int(clicked)
        return merged, since


class ABSplit:
    """A fixed share of shoppers on a challenger version, chosen by a hash of who they are.

    The hash is salted with the challenger's version, so each new experiment draws a fresh
    split, and is stable for one shopper: the same user always sees the same arm.
    """

    def __init__(self, challenger: str, share: float) -> None:
        self.challenger = challenger.strip()
        self.share = share
        self._cut = int(round(share * 10_000))

    @property
    def active(self) -> bool:
        return bool(self.challenger) and self._cut > 0

    def in_challenger(self, user_id: int | None, session_id: str | None) -> bool:
        if not self.active:
            return False
        key = f"u:{user_id}" if user_id is not None else f"s:{session_id or ''}"
        return zlib.crc32(f"{self.challenger}|{key}".encode()) % 10_000 < self._cut


def _ctr(shown: int, clicked: int) -> float:
    return round(clicked / shown, 4) if shown else 0.0


def live_rows(counts: dict[tuple[str, str], list[int]]) -> list[dict[str, Any]]:
    """Per version and surface, most impressions first."""
    rows = [
        {
            "model_version": version,
            "surface": surface,
            "impressions": shown,
            "clicks": clicked,
            "ctr": _ctr(shown, clicked),
        }
        for (version, surface), (shown, clicked) in counts.items()
    ]
    rows.sort(key=lambda r: (-r["impressions"], r["model_version"], r["surface"]))
    return rows


def ab_report(
    counts: dict[tuple[str, str], list[int]], control: str | None, challenger: str | None, share
) -> dict[str, Any] | None:
    """Both arms' impressions, clicks and CTR, the lift and a two-proportion z-test."""
    if not control or not challenger:
        return None
    arms = []
    for label, arm_share in ((control, 1.0 - share), (challenger, share)):
        shown = sum(n[0] for (v, _), n in counts.items() if v == label)
        clicked = sum(n[1] for (v, _), n in counts.items() if v == label)
        arms.append(
            {
                "arm": "control" if label == control else "challenger",
                "model_version": label,
                "share": round(arm_share, 4),
                "impressions": shown,
                "clicks": clicked,
                "ctr": _ctr(shown, clicked),
            }
        )
    a, b = arms
    report: dict[str, Any] = {"arms": arms, "lift": None, "z": None, "p_value": None}
    n1, n2 = a["impressions"], b["impressions"]
    if n1 and n2:
        p1, p2 = a["clicks"] / n1, b["clicks"] / n2
        pooled = (a["clicks"] + b["clicks"]) / (n1 + n2)
        se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        report["lift"] = round((p2 - p1) / p1, 4) if p1 else None
        if se > 0:
            z = (p2 - p1) / se
            report["z"] = round(z, 3)
            report["p_value"] = round(math.erfc(abs(z) / math.sqrt(2)), 4)
    return report
