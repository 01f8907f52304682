"""Refuse passwords an attacker would guess first, judged by zxcvbn, not by home-made rules.

zxcvbn (the Python port of Dropbox's estimator) matches a password against its lists of common
passwords, English words, names and keyboard patterns, plus dates, repeats and sequences, and
estimates the guesses needed; a length rule alone let ``12345678``, ``password`` and eight
spaces through. The account's own email and name count as known words too.

zxcvbn's matching grows steeply with length (a random 128-character password took 3 s here),
and registration is unauthenticated, so only the first :data:`JUDGED_CHARS` characters are
judged: a password whose first 32 characters are strong is strong.
"""

from __future__ import annotations

import re

from zxcvbn import zxcvbn

from serving.core.errors import ProblemError

JUDGED_CHARS = 32
SCORES = ("too guessable", "very guessable", "somewhat guessable", "safely unguessable", "strong")


class WeakPassword(ProblemError):
    def __init__(self, reason: str, suggestions: list[str]) -> None:
        super().__init__(
            422,
            "Weak password",
            f"Choose a harder password: {reason}",
            type_="https://storeloop.dev/problems/weak-password",
            suggestions=suggestions,
        )


def check_password(password: str, *, min_score: int, user_inputs: list[str] = ()) -> None:
    """Raise :class:`WeakPassword` unless zxcvbn scores ``password`` at least ``min_score``.

    ``user_inputs`` (email, name) are split into words, so ``ada.shopper`` is weak for Ada.
    """
    words = [w for text in user_inputs for w in re.split(r"[^\w]+", text.lower()) if len(w) > 2]
    result = zxcvbn(password[:JUDGED_CHARS], user_inputs=words)
    score = int(result["score"])
    if score >= min_score:
        return
    feedback = result.get("feedback") or {}
    warning = str(feedback.get("warning") or "").strip()
    reason = warning or f"it is {SCORES[score]} (strength {score} of 4, {min_score} needed)"
    raise WeakPassword(reason.rstrip(".") + ".", [str(s) for s in feedback.get("suggestions", [])])
