"""Errors raised by storeloop models, so callers can tell bad input from broken training."""

from __future__ import annotations


class ModelError(Exception):
    """Base class of every model error."""


class ModelFitError(ModelError):
    """Training produced an unusable model (e.g. NaN or infinite factors)."""


class UnknownModelError(ModelError, ValueError):
    """A model name that the factory does not know."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown model {name!r}; known models: {', '.join(sorted(known))}")
        self.name = name
        self.known = known


class NotFittedError(ModelError):
    """A model was asked to recommend before ``fit`` or ``load``."""


class ArtifactError(ModelError):
    """A stored artifact is missing, half-written or fails its checksum."""


class PromotionRefused(ModelError):
    """The promotion gate refused a candidate; the message says which rule failed."""
