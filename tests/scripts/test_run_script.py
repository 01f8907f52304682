"""`scripts/run.sh` (what `make run` runs): refuses a taken port at once, and Ctrl-C stops
the shop, the live shoppers and every Dagster process it started.

The long test starts the real script on free ports with a tiny demo (first start included:
history, pipelines, shop, Dagster UI, one live shopper), sends SIGINT as a terminal's Ctrl-C
would, and checks that no process it started is left.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from devtools.server import default_signals
from devtools.waits import scaled

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "run.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path, port: int, dagster_port: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATA_DIR", "DATABASE_URL", "DAGSTER_HOME", "JWT_SECRET")
    }
    env.update(
        DATA_DIR=str(tmp_path / "data"),
        HOST="127.0.0.1",
        PORT=str(port),
        DAGSTER_PORT=str(dagster_port),
        DEMO_USERS="40",
        DEMO_PRODUCTS="150",
        DEMO_DAYS="2",
        LIVE_SHOPPERS="1",
        LIVE_THINK="0.5",
        # the script's grace before it KILLs what is left (3 s): a loaded machine needs longer
        # for Dagster's orderly shutdown, whose log line the long test checks
        STOP_GRACE=str(max(3, round(scaled(3)))),
    )
    return env


def _children(root: int) -> set[int]:
    """Every live descendant of ``root`` (read from /proc: no extra dependency)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _port_free(port: int) -> bool:
    """Nothing listens on ``port`` (connections left in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_taken_port_is_named_and_the_script_exits_2_at_once(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        proc = subprocess.run(
            ["bash", str(SCRIPT)],
            env=_env(tmp_path, taken, _free_port()),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2
    assert f"port {taken}" in proc.stderr and "PORT=" in proc.stderr
    assert "migrating" not in proc.stdout  # refused before any long step


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_ctrl_c_stops_the_shop_live_shoppers_and_every_dagster_process(tmp_path: Path) -> None:
    port, dagster_port = _free_port(), _free_port()
    log = tmp_path / "run.out"
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["bash", str(SCRIPT)],
            env=_env(tmp_path, port, dagster_port),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # as from a terminal: the worker's signal mask may block SIGINT (it hung so once)
            preexec_fn=default_signals,
        )
        try:
            deadline = time.monotonic() + scaled(1500)
            while "storeloop is running" not in log.read_text():
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(1)
            # Dagster dev starts its webserver and daemon after the shop is ready: wait for them.
            deadline = time.monotonic() + scaled(300)
            while _port_free(dagster_port):
                assert time.monotonic() < deadline, "the Dagster UI never listened"
                time.sleep(1)
            started = _children(proc.pid)
            commands = " ".join(
                Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                for p in started
                if _alive(p)
            )
            assert "serving serve" in commands and "simulate live" in commands, commands
            assert "dagster" in commands and "dagster_webserver" in commands, commands

            proc.send_signal(signal.SIGINT)
            # Stopping Dagster's webserver, daemon and code servers takes seconds when idle and
            # much longer on a loaded machine: the wait scales with the load.
            rc = proc.wait(timeout=scaled(60))
        finally:
            if proc.poll() is None:  # a failed test still stops what the script started
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    assert rc == 0, log.read_text()[-2000:]
    deadline = time.monotonic() + scaled(30)
    while any(_alive(p) for p in started) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = [p for p in started if _alive(p)]
    assert not left, f"still running after Ctrl-C: {left}"
    assert _port_free(port) and _port_free(dagster_port)
    assert "stopping storeloop" in log.read_text()
    # Dagster's own log: started with the command Dagster recommends (`dg dev`), so neither the
    # "superseded, use 'dg dev'" warning nor the "dagster.yaml in the current folder is
    # ignored" one; and Ctrl-C took its orderly shutdown path (SIGINT), not only the KILL.
    dagster_log = (tmp_path / "data" / "dagster-dev.log").read_text()
    assert "superseded" not in dagster_log and "dg dev" not in dagster_log, dagster_log[-2000:]
    assert "is ignored" not in dagster_log, dagster_log[-2000:]
    assert "Shutting down Dagster services" in dagster_log, dagster_log[-2000:]
