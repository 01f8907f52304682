"""A writer process for the SIGKILL test: appends batches to the stream, printing each
batch's event ids only after ``append`` returned (the moment a client would get its 202)."""

from __future__ import annotations

import sys
import time
import uuid

from serving.eventlog import EventLog
from serving.eventlog.records import server_record
from serving.eventlog.stream import EventStream


def main(url: str, stream: str, events_dir: str) -> None:
    log = EventLog(events_dir, stream=EventStream(url, stream), local_segments=False)
    while True:
        records = [
            server_record("cart_add", time.time(), session_id=str(uuid.uuid4()), product_id=i)
            for i in range(20)
        ]
        log.append(records)
        print(" ".join(r["event_id"] for r in records), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
