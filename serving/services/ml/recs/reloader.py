"""Which model serves: the registry's serving version (and an A/B challenger beside it).

A new version is loaded and verified completely, then swapped in with one reference
assignment, so requests never see a half-loaded model; a corrupt artifact is refused while
the previous one keeps serving.

While a version already serves, its successor also waits until its candidate cache is warm
(``candidates.py``, in a background thread): until then every user's first request would score
the whole catalog (about 25 ms for the EASE + ALS blend over 100,000 items, against a cached
answer's fraction of a millisecond), so the old version, warm, keeps answering meanwhile. The
first version after start-up serves at once and warms behind (nothing warmer to keep).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from models.registry import ModelRegistry
from serving.core.config import Settings
from serving.services.ml.recs.bundle import Bundle, build_bundle
from serving.services.ml.recs.online import ABSplit

log = logging.getLogger("storeloop.recs")


class ModelReloader:
    """Follows the registry's serving pointer for one model name."""

    def __init__(
        self,
        settings: Settings,
        registry_path: Path,
        prepare: Callable[[Bundle], None],
        stopping: threading.Event,
    ) -> None:
        self.settings = settings
        self.registry = ModelRegistry(registry_path, kind="recs")
        self.name = settings.recs_model_name
        self.current: Bundle | None = None
        self.refused: dict[str, str] = {}  # version → why it was refused
        # A/B test: the challenger bundle, loaded beside ``current`` (recs_online.py).
        self.ab = ABSplit(settings.recs_ab_version, settings.recs_ab_share)
        self.challenger: Bundle | None = None
        # The next serving version while its candidates warm (swapped in once they are).
        self.pending: Bundle | None = None
        self.swaps = 0
        self._prepare = prepare  # syncs a new bundle's rule arrays before it serves
        self._stopping = stopping

    def reload_if_changed(self) -> bool:
        """Load and swap in the serving version if it changed; True when a swap happened.

        With a version serving already, the new one is swapped in only once its candidates
        are warm (a later call makes the swap; the warm-up runs in its own thread). The A/B
        challenger (``recs_ab_version``) is loaded beside it once it is published.
        """
        self._reload_challenger()
        version = self.registry.serving_version(self.name)
        current = self.current
        if version is None or (current is not None and current.version == version):
            self.pending = None  # the pointer went back: stop warming what will not serve
            return False
        pending = self.pending
        if pending is not None and pending.version == version:
            if not _warm(pending):
                return False
            self.pending = None
            self._swap(pending)
            return True
        bundle = self._load(version)
        if bundle is None:
            return False
        if current is None or _warm(bundle):
            self._swap(bundle)
            self._warm(bundle, lambda: self.current is bundle)
            return True
        self.pending = bundle
        log.info("recommendations: warming %s before it serves", bundle.label)
        self._warm(bundle, lambda: self.pending is bundle)
        return False

    def _swap(self, bundle: Bundle) -> None:
        self.current = bundle
        self.swaps += 1
        log.info("recommendations now serve %s", bundle.label)

    def _reload_challenger(self) -> None:
        version = self.ab.challenger
        current = self.challenger
        if not self.ab.active or (current is not None and current.version == version):
            return
        if version in self.refused or version not in self.registry.versions(self.name):
            return  # not published (yet): everyone gets the serving version
        bundle = self._load(version)
        if bundle is not None:
            self.challenger = bundle
            log.info(
                "recommendations: A/B challenger %s for %.0f %%", bundle.label, 100 * self.ab.share
            )
            self._warm(bundle, lambda: self.challenger is bundle)

    def _load(self, version: str) -> Bundle | None:
        if version in self.refused:
            return None
        try:
            model = self.registry.load_model(self.name, version)  # verifies checksums
            bundle = build_bundle(self.name, version, model, self.settings)
            self._prepare(bundle)
            return bundle
        except Exception as exc:  # corrupt or unreadable: refuse it, keep the previous model
            self.refused[version] = str(exc)
            log.error("recommendations: %s/%s refused: %s", self.name, version, exc)
            return None

    def _warm(self, bundle: Bundle, wanted: Callable[[], bool]) -> None:
        if bundle.candidates is not None:
            cache = bundle.candidates
            threading.Thread(
                target=cache.warm,
                args=(lambda: wanted() and not self._stopping.is_set(),),
                name="recs-warm",
                daemon=True,
            ).start()

    def bundle_for(self, user_id: int | None, session_id: str | None) -> Bundle | None:
        """The bundle this shopper's arm is served from (the serving one outside a test)."""
        challenger = self.challenger
        if challenger is not None and self.ab.in_challenger(user_id, session_id):
            return challenger
        return self.current

    def bundles(self) -> list[Bundle]:
        """The loaded bundles (serving, challenger, then the one warming up to serve)."""
        return [b for b in (self.current, self.challenger, self.pending) if b is not None]


def _warm(bundle: Bundle) -> bool:
    """True when ``bundle`` may serve without a cold first request per user."""
    return bundle.candidates is None or bundle.candidates.warm_seconds is not None
