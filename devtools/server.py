"""The one way tests, benchmarks and scripts start the shop (or any ASGI app) under uvicorn.

Before, four copies of the uvicorn command line (``bench/_server.py``, ``bench_checkout.py``,
``storefront/screenshots.py``, ``tests/checkout/server.py``) drifted apart in flags, readiness
probe, start-up deadline and how a failed start was reported. Here: one command line (uvloop,
httptools, no access log: what production runs), one environment with a bytecode cache of its
own, one readiness wait that stretches with the machine's load (``devtools/waits.py``), one stop.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import httpx

from devtools.waits import wait_until

__all__ = ["ROOT", "ServerProcess", "free_port", "server_env", "uvicorn_command"]

ROOT = Path(__file__).resolve().parents[1]
#: Bytecode for server subprocesses, outside the source tree and the virtualenv.
PYCACHE = Path(tempfile.gettempdir()) / "storeloop-pycache"
SHOP_APP = "serving.asgi:app"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with a bytecode cache of its own.

    With ``PYTHONDONTWRITEBYTECODE`` set and no ``__pycache__`` in the virtualenv, every server
    start compiles the whole app and its dependencies (sklearn, scipy …) from source: seconds of
    CPU per start, over a minute on a loaded machine. A cache under the temp dir avoids that
    without writing into the source tree or the shared virtualenv.
    """
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(PYCACHE))
    return env


def uvicorn_command(app: str, port: int, *, workers: int = 1) -> list[str]:
    """The command line every server of the tests and benchmarks runs with."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
    ]


def default_signals() -> None:
    """``preexec_fn`` for a child that must see SIGINT/SIGTERM as a terminal's child would:
    no signal blocked, SIGINT handled by default. A child inherits its parent's signal mask,
    and a test worker's may have signals blocked by a library an earlier test loaded (gRPC's,
    under Dagster); a Ctrl-C sent to the child would then never be handled."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class ServerProcess:
    """``uvicorn <app>`` in a subprocess on a free port of 127.0.0.1.

    ``env`` is the whole environment of the server (build it on :func:`server_env`);
    ``probe`` is the path that answers 200 once the app is ready; ``log_path``, when given,
    takes the server's output (and its tail goes into a failed start's error).
    Use as a context manager (start on entry, stop on exit) or call :meth:`start`/:meth:`stop`.
    """

    def __init__(
        self,
        app: str = SHOP_APP,
        *,
        env: Mapping[str, str] | None = None,
        workers: int = 1,
        probe: str = "/healthz",
        log_path: Path | None = None,
        what: str | None = None,
    ) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(server_env() if env is None else env)
        self.workers = workers
        self.probe = probe
        self.log_path = log_path
        self.what = what or f"uvicorn {app} ({workers} worker(s))"
        self.proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 120.0) -> ServerProcess:
        """Start the server and wait until ``probe`` answers 200 (the deadline is scaled)."""
        output: Any = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            output = self._log = self.log_path.open("wb")
        proc = self.proc = subprocess.Popen(
            uvicorn_command(self.app, self.port, workers=self.workers),
            cwd=ROOT,
            env=self.env,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            preexec_fn=default_signals,
        )

        def ready() -> bool:
            try:
                return httpx.get(self.url + self.probe, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_until(
                ready,
                timeout=timeout,
                what=f"{self.what} (pid {proc.pid}) to answer {self.url}{self.probe} with 200",
                interval=0.2,
                alive=lambda: proc.poll() is None,
            )
        except (TimeoutError, RuntimeError) as exc:
            code = proc.poll()
            self.stop()  # a server left running would poll the test tables for the rest of the run
            tail = f"; its log:\n{self.log_tail()}" if self.log_path is not None else ""
            if code is not None:
                raise RuntimeError(f"server exited with code {code} during start-up{tail}") from exc
            raise RuntimeError(f"{exc}{tail}") from exc
        return self

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` of the server's log ("" without a log file)."""
        if self.log_path is None:
            return ""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill9(self) -> None:
        """SIGKILL, as a crash would: no shutdown hooks run."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), SIGKILL if it has not ended 15 s later."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServerProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
