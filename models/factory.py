"""Build or load a recommender by name, so configs and the CLI never import model classes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Importing the modules registers their classes in MODEL_CLASSES.
from models import baselines, blend, ease, factorization, graph, neighbors, rerank  # noqa: F401
from models.base import MODEL_CLASSES, Recommender
from models.exceptions import UnknownModelError


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`, sorted."""
    return sorted(MODEL_CLASSES)


def build_model(name: str, **params: Any) -> Recommender:
    """Instantiate an unfitted model.

    Parameters
    ----------
    name : str
        One of :func:`available_models` (``als``, ``bpr``, ``ease``, ``item2item``,
        ``popular``, ``trending``, ``bought_together``, ``rp3beta``, ``blend``).
    **params
        Hyperparameters overriding the model's defaults.

    Returns
    -------
    Recommender

    Raises
    ------
    UnknownModelError
        If ``name`` is not a known model.
    """
    key = name.strip().lower()
    if key not in MODEL_CLASSES:
        raise UnknownModelError(name, available_models())
    return MODEL_CLASSES[key](**params)


def load_model(directory: str | Path) -> Recommender:
    """Load any saved model; its stored name picks the class."""
    return Recommender.load(directory)
