"""Checks of the arguments and files that users hand to ``recs evaluate`` and ``search evaluate``.

These commands take people's own files, so a bad value must end in one line that names it and
exit code 2, not a traceback, and a file that can only give a table of zeros (no rows, one
user, no judged product in the catalog, a ``--min-rating`` above every rating) is refused
rather than reported as figures. Kept apart from the commands, which only call these checks,
so the evaluation code itself can change freely.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from serving.core.storage import probe_dir

#: Largest relevance grade: gains are 2^grade - 1, and graded scales are 0-3 or 0-4 in practice.
MAX_GRADE = 100.0


class InputError(ValueError):
    """A user's argument or file cannot be evaluated; the message is the one line to print."""


def require_k(k: int) -> None:
    if k < 1:
        raise InputError(f"--k must be at least 1 (got {k})")


def require_fraction(flag: str, value: float) -> None:
    if not (0.0 < value < 1.0):
        raise InputError(f"{flag} must be between 0 and 1, exclusive (got {value})")


def require_positive(flag: str, value: float) -> None:
    if not (value > 0):
        raise InputError(f"{flag} must be positive (got {value})")


def output_path(flag: str, raw: str | None) -> Path | None:
    """``raw`` as a path that can be written now, checked before minutes of evaluation.

    Its folder must already exist (a typo must not create ``/x``) and take a real write.
    """
    if raw is None:
        return None
    path = Path(raw)
    if path.is_dir():
        raise InputError(f"{flag} {raw}: is a directory")
    folder = path.parent
    if not folder.exists():
        raise InputError(f"{flag} {raw}: directory {folder} does not exist")
    if not folder.is_dir():
        raise InputError(f"{flag} {raw}: {folder} is not a directory")
    reason = probe_dir(folder)
    if reason:
        raise InputError(f"{flag} {raw}: cannot write there ({reason})")
    return path


def write_output(flag: str, path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{flag} {path}: {exc.strerror or exc}") from exc


def _first_line(mask: pd.Series) -> int:
    """The file line of the first row where ``mask`` holds.

    Frames keep the row labels the reader gave them (0 for the line after the header), even
    after blank rows are dropped, so the label is the line number less two.
    """
    return int(mask[mask].index[0]) + 2


def _numbers(frame: pd.DataFrame, column: str, where: str) -> pd.Series:
    """``column`` as floats; a value that is not a number is an error naming its line."""
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").astype(float)
    bad = values.isna() & raw.notna() | ~values.isna() & ~values.apply(math.isfinite)
    if bad.any():
        shown = str(raw[bad].iloc[0])[:40]
        line = _first_line(bad)
        raise InputError(f"{where}: {column} {shown!r} on line {line} is not a finite number")
    return values


def ratings(frame: pd.DataFrame, *, path: str, min_rating: float | None) -> pd.DataFrame:
    """A ratings frame that can give figures: numeric ratings, two users and two items.

    Returns the frame with a float ``rating`` column (when present).
    """
    if frame.empty:
        raise InputError(f"{path}: no rows with user, item and timestamp")
    if "rating" in frame.columns:
        frame = frame.assign(rating=_numbers(frame, "rating", path))
    kept = frame
    if min_rating is not None:
        if "rating" not in frame.columns:
            raise InputError(f"--min-rating {min_rating}: {path} has no rating column")
        top = frame["rating"].max()
        if not (top >= min_rating):
            raise InputError(f"--min-rating {min_rating} is above every rating in {path} ({top})")
        kept = frame[frame["rating"] >= min_rating]
    users, items = kept["user"].nunique(), kept["item"].nunique()
    if users < 2 or items < 2:
        raise InputError(
            f"{path}: needs interactions of at least two users with two items to hold some out "
            f"(found {users} user(s), {items} item(s)"
            + (f" rated {min_rating} or more)" if min_rating is not None else ")")
        )
    return frame


def judgments(
    graded: pd.DataFrame, catalog: pd.DataFrame, *, path: str, catalog_path: str
) -> list[str]:
    """Refuse judgments that can only score zero; return warnings worth printing."""
    lacking = {"product_id", "title"} - set(catalog.columns)
    if lacking:
        raise InputError(f"{catalog_path}: catalog lacks columns: {', '.join(sorted(lacking))}")
    if catalog.empty:
        raise InputError(f"{catalog_path}: the catalog has no products")
    missing = {"query", "product_id", "grade"} - set(graded.columns)
    if missing:
        raise InputError(f"{path}: judgments lack columns: {', '.join(sorted(missing))}")
    if graded.empty:
        raise InputError(f"{path}: no judgments")
    blank = graded["query"].isna() | (graded["query"].astype(str).str.strip() == "")
    if blank.any():
        raise InputError(
            f"{path}: {int(blank.sum())} judgment(s) have a blank query "
            f"(first on line {_first_line(blank)})"
        )
    grades = _numbers(graded, "grade", path)
    out_of_range = (grades < 0) | (grades > MAX_GRADE)
    if out_of_range.any():
        raise InputError(
            f"{path}: grade {grades[out_of_range].iloc[0]:g} on line "
            f"{_first_line(out_of_range)} is outside 0 to {MAX_GRADE:g}"
        )
    if not (grades > 0).any():
        raise InputError(f"{path}: no judgment has a grade above 0, so every figure would be 0")
    known = set(catalog["product_id"].astype(str))
    relevant = graded.loc[grades > 0, "product_id"].astype(str)
    unknown = ~relevant.isin(known)
    if unknown.all():
        raise InputError(
            f"{path}: no relevant judged product is in the catalog {catalog_path} "
            f"(e.g. product_id {relevant.iloc[0]!r})"
        )
    warnings = []
    if unknown.any():
        warnings.append(
            f"warning: {int(unknown.sum())} of {len(relevant)} relevant judgments name products "
            f"not in {catalog_path}; they count as unfound"
        )
    return warnings
