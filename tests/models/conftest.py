"""Fixtures for recommender tests: a toy two-block data set and a small MovieLens-like log."""

from __future__ import annotations

import pandas as pd
import pytest
from recs_toy import make_two_blocks

from features.interactions import Interactions
from models.evaluation.synthetic import movielens_like


@pytest.fixture(scope="session")
def two_blocks() -> Interactions:
    """The toy data set (session-scoped: models never mutate it)."""
    return make_two_blocks()


@pytest.fixture(scope="session")
def small_ratings() -> pd.DataFrame:
    """A small MovieLens-shaped log (fast enough for unit tests)."""
    frame, _ = movielens_like(n_users=200, n_items=300, n_ratings=8000, seed=1)
    return frame
