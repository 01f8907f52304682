"""Choose which evaluated model the registry should be offered, and say why.

Choosing by the held-out test score and then reporting that same score would flatter the
winner (selection bias), so the choice uses each model's *validation* nDCG — measured on the
split carved from training while tuning — and the test figures are left to the promotion
gate. A blend is a candidate like any other: it is chosen only when it wins on validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.evaluation.runner import ModelResult


@dataclass(frozen=True)
class Selection:
    """The chosen model, its params, and the reason in words."""

    model: str
    params: dict[str, Any]
    reason: str


def select_candidate(
    results: list[ModelResult], baseline: str = "popular", metric: str = "ndcg@10"
) -> Selection | None:
    """The non-baseline model with the best validation score (test score when untuned).

    Parameters
    ----------
    results : list of ModelResult
        From :func:`models.evaluation.runner.evaluate_models`.
    baseline : str
        The baseline's name; it is never chosen here (the gate compares against it).
    metric : str
        Metric used when a model has no validation score.

    Returns
    -------
    Selection or None
        None when there is no candidate besides the baseline.
    """
    candidates = [r for r in results if r.model != baseline]
    if not candidates:
        return None

    def key(result: ModelResult) -> tuple[int, float]:
        validation = result.tuning.get("validation_ndcg")
        if validation is not None:
            return (1, float(validation))
        return (0, float(result.metrics.get(metric, float("-inf"))))

    best = max(candidates, key=key)
    tuned, score = key(best)
    basis = "validation nDCG" if tuned else f"held-out {metric} (untuned)"
    others = ", ".join(f"{r.model} {key(r)[1]:.4f}" for r in candidates if r is not best)
    reason = f"{best.model} has the best {basis}: {score:.4f}" + (
        f" (others: {others})" if others else ""
    )
    return Selection(best.model, dict(best.params), reason)
