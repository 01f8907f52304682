"""Things that happen when an anonymous session signs in (e.g. the cart merge).

Features register a hook with :func:`on_login`; each returns a small report (or None) that the
token response carries, so the client can tell the shopper what was merged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

LoginHook = Callable[..., dict[str, Any] | None]
_HOOKS: list[LoginHook] = []


def on_login(hook: LoginHook) -> LoginHook:
    _HOOKS.append(hook)
    return hook


def run_login_hooks(
    session: Session, *, session_id: str, user_id: int, events: Any
) -> dict[str, Any] | None:
    report: dict[str, Any] = {}
    for hook in _HOOKS:
        result = hook(session, session_id=session_id, user_id=user_id, events=events)
        if result:
            report.update(result)
    return report or None
