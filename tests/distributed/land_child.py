"""A lake landing pass that SIGKILLs itself at one point, for the re-delivery test.

``renamed``: right after the batch's segment was renamed into place, before any ack (the
batch is in the lake's input *and* will be delivered again). ``writing``: while the segment's
temporary is being written (nothing landed; the batch will be delivered again).
"""

from __future__ import annotations

import os
import signal
import sys

from pipelines.event_stream import land_stream


def main(url: str, stream: str, events_dir: str, point: str, ack_wait: str) -> None:
    def hook(event: str, args: tuple) -> None:
        if point == "renamed" and event == "open" and str(args[0]) == events_dir:
            os.kill(os.getpid(), signal.SIGKILL)  # the directory fsync after the rename
        if point == "writing" and event == "os.chmod":
            os.kill(os.getpid(), signal.SIGKILL)  # the fchmod after the data was written

    sys.addaudithook(hook)
    land_stream(url, events_dir, stream=stream, ack_wait=float(ack_wait))
    sys.exit(3)  # not killed: the kill point was never reached


if __name__ == "__main__":
    main(*sys.argv[1:6])
