"""ALS on Spark MLlib (``STORELOOP_TRAINER=spark``) in local mode on a small data set.

The Spark-fitted model is an ordinary ``als`` artifact: it saves and loads like the in-process
one, learns the structure of the data (held-out items of a user's own group rank above the
rest, where popularity cannot tell them apart), and passes through the same registry gate.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from features.interactions import interactions_from_triples
from models.factorization import ALSRecommender
from models.factory import load_model
from models.registry import ModelRegistry, PromotionGate
from pipelines.resources import Trainer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PARAMS = {"factors": 4, "iterations": 5, "regularization": 0.1, "alpha": 5.0}


@pytest.fixture(scope="module")
def spark_ready() -> Iterator[None]:
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[spark]')")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime on PATH: Spark needs Java 17")
    yield
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:  # the JVM would otherwise live on in this test worker
        session.stop()


def _two_groups(seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    """60 users in two groups, each buying from its own 10 items; one held-out item each."""
    rng = np.random.default_rng(seed)
    users, items, held = [], [], {}
    for user in range(60):
        group = np.arange(10) + (10 if user % 2 else 0)
        picks = rng.permutation(group)
        held[user] = int(picks[0])
        users += [user] * 6
        items += [int(i) for i in picks[1:7]]
    return np.asarray(users), np.asarray(items), held


def test_spark_als_learns_the_groups_and_round_trips(spark_ready, tmp_path: Path) -> None:
    from models.spark_als import fit_spark_als

    users, items, held = _two_groups()
    model = fit_spark_als(interactions_from_triples(users, items), master="local[2]", **PARAMS)
    assert isinstance(model, ALSRecommender) and model.name == "als"
    assert model.spark_info["fit_seconds"] > 0
    ids, _ = model.recommend(list(held), k=4)
    pairs = list(zip(held, ids, strict=True))
    own_group = [np.mean([(int(i) >= 10) == bool(u % 2) for i in row]) for u, row in pairs]
    assert np.mean(own_group) > 0.9, "recommendations stay inside the user's group"
    # Each user has 4 unseen items of their own group, one of them held out: a model that
    # learned the groups finds it in its top 4; popularity (all items equal) could not.
    assert np.mean([held[u] in row for u, row in pairs]) > 0.8
    saved = model.save(tmp_path / "als")
    loaded = load_model(saved)
    assert type(loaded) is ALSRecommender
    np.testing.assert_array_equal(loaded.item_factors, model.item_factors)
    again, _ = loaded.recommend(list(held), k=4)
    assert [list(r) for r in again] == [list(r) for r in ids]


def test_spark_model_goes_through_the_same_gate(spark_ready, tmp_path: Path) -> None:
    from models.spark_als import fit_spark_als

    users, items, _ = _two_groups(1)
    model = fit_spark_als(interactions_from_triples(users, items), master="local[2]", **PARAMS)
    registry = ModelRegistry(tmp_path / "registry", kind="recs")
    good = registry.publish_model(
        model, name="als", metrics={"ndcg@10": 0.4}, baselines={"popular": {"ndcg@10": 0.2}}
    )
    decision = registry.promote("als", good["version"], gate=PromotionGate())
    assert registry.serving_version("als") == good["version"], decision
    worse = registry.publish_model(
        model, name="als", metrics={"ndcg@10": 0.1}, baselines={"popular": {"ndcg@10": 0.2}}
    )
    with pytest.raises(Exception, match="popular|baseline"):
        registry.promote("als", worse["version"], gate=PromotionGate())
    assert registry.serving_version("als") == good["version"]
    assert type(registry.load_model("als", good["version"])) is ALSRecommender


def test_unknown_trainer_is_a_clear_error() -> None:
    users, items, _ = _two_groups()
    with pytest.raises(ValueError, match="STORELOOP_TRAINER must be one of implicit, spark"):
        Trainer(kind="gpu").fit("als", interactions_from_triples(users, items))
