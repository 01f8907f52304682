"""Children the tests stop with Ctrl-C see it even when the test process blocks SIGINT."""

from __future__ import annotations

import signal
import subprocess

from devtools.server import default_signals
from devtools.waits import scaled

TRAPS_CTRL_C = "trap 'echo stopped; exit 0' INT; echo up; while true; do sleep 0.1 & wait $!; done"


def test_a_child_handles_ctrl_c_although_the_parent_blocks_it() -> None:
    # What a library loaded by an earlier test can leave behind in the worker (gRPC's threads).
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        child = subprocess.Popen(
            ["bash", "-c", TRAPS_CTRL_C],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=default_signals,
        )
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "up"
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=scaled(10))
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0 and out.strip() == "stopped"
