"""What the simulator needs from a shop it runs in this process, as a protocol.

The simulator never imports serving. For ``--target inprocess`` whoever owns both sides (the
``storeloop`` command line, a test, a benchmark) passes an object with these three methods;
serving's is ``serving.inprocess.LocalShop``.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

from simulation.inprocess import AsgiApp

__all__ = ["LocalShop"]


class LocalShop(Protocol):
    """A shop this process can build and drive through ASGI."""

    @property
    def data_dir(self) -> Path:
        """Where the shop keeps its data (the ground truth goes beside it)."""
        ...

    def prepare(self, admin_email: str) -> str:
        """Bring the schema up to date and create the admin; return the admin's password."""
        ...

    def app(self, *, loader: bool = False) -> AbstractAsyncContextManager[AsgiApp]:
        """A fresh ASGI app with its lifespan running; ``loader``: for loading the catalog."""
        ...
