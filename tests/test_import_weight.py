"""The shop server's import does not load the training stack.

Every ``storeloop serve`` start, every ``python -m serving`` command and every test server
pays for what ``serving.asgi`` imports. pandas (~0.4 s) and scikit-learn are only needed to
train and evaluate, and are imported where that happens.
"""

from __future__ import annotations

import subprocess
import sys

from devtools.server import ROOT

TRAINING_ONLY = ("pandas", "sklearn", "lightgbm", "dagster")


def test_serving_imports_no_training_library() -> None:
    probe = (
        "import sys, serving.asgi; "
        f"print(','.join(m for m in {TRAINING_ONLY!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "", f"serving.asgi loaded {done.stdout.strip()}"
