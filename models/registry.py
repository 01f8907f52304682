"""A file-system registry of versioned artifacts with a gated, atomic "serving" pointer.

Layout under ``root`` (the caller passes ``DATA_DIR/registry``)::

    <root>/<kind>/<name>/<version>/        artifact files + manifest.json
    <root>/<kind>/<name>/serving.json      pointer: serving version + previous versions
    <root>/<kind>/<name>/history.jsonl     one line per promotion / rollback

``kind`` separates artifact families (``recs`` models, ``search`` indexes) so the same code
serves both. Every write goes to a temporary sibling first and is renamed into place, so a
reader sees either the old state or the new one, never half of it; every load re-checks the
sha256 of each file listed in the manifest, so a truncated or tampered artifact is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from features import atomic
from models.exceptions import ArtifactError, PromotionRefused

MANIFEST = "manifest.json"
POINTER = "serving.json"
HISTORY = "history.jsonl"


@dataclass(frozen=True)
class PromotionGate:
    """Rules a candidate must pass to serve.

    Parameters
    ----------
    metric : str
        Gate metric, higher is better (default ``ndcg@10``).
    baseline : str
        Name of the baseline in the manifest's ``baselines`` that must be beaten strictly.
    max_drop : float
        Largest tolerated drop against the current serving model.
    relative : bool
        Read ``max_drop`` as a fraction of the serving model's score (0.05 = 5 %) instead
        of an absolute difference.
    """

    metric: str = "ndcg@10"
    baseline: str = "popular"
    max_drop: float = 0.01
    relative: bool = False

    def check(
        self,
        candidate: dict[str, Any],
        serving: dict[str, Any] | None,
        serving_metrics: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        """Return the decision details or raise :class:`PromotionRefused`.

        Parameters
        ----------
        candidate : dict
            Candidate manifest.
        serving : dict or None
            Manifest of the model serving now, if any.
        serving_metrics : dict, optional
            The serving model's metrics re-measured on the candidate's evaluation; needed
            when the two manifests were evaluated differently.

        Returns
        -------
        dict
            Scores that were compared.
        """
        score = candidate.get("metrics", {}).get(self.metric)
        if score is None:
            raise PromotionRefused(f"candidate has no {self.metric!r} metric")
        base = candidate.get("baselines", {}).get(self.baseline, {}).get(self.metric)
        if base is None:
            raise PromotionRefused(
                f"candidate manifest lacks baselines.{self.baseline}.{self.metric}; "
                "evaluate the baseline on the same split"
            )
        if not score > base:
            raise PromotionRefused(
                f"{self.metric} {score:.4f} does not beat {self.baseline} ({base:.4f})"
            )
        decision: dict[str, Any] = {"metric": self.metric, "candidate": score, "baseline": base}
        if serving is None:
            return decision
        if serving_metrics is None:
            if serving.get("evaluation") != candidate.get("evaluation"):
                raise PromotionRefused(
                    "the serving model was evaluated on a different evaluation; pass its "
                    "metrics measured on the candidate's evaluation"
                )
            serving_metrics = serving.get("metrics", {})
        current = serving_metrics.get(self.metric)
        if current is None:
            raise PromotionRefused(f"serving model has no {self.metric!r} metric")
        allowed = self.max_drop * abs(current) if self.relative else self.max_drop
        if score < current - allowed:
            raise PromotionRefused(
                f"{self.metric} {score:.4f} is worse than serving {serving.get('version')} "
                f"({current:.4f}) by more than {allowed:.4f}"
            )
        decision["serving"] = current
        return decision


class ArtifactRegistry:
    """Versioned artifacts of one kind (e.g. ``recs``) under a root directory.

    Parameters
    ----------
    root : str or pathlib.Path
        Registry root (created on first write).
    kind : str
        Artifact family; a sub-directory of ``root``.
    """

    def __init__(self, root: str | Path, kind: str = "recs") -> None:
        self.root = Path(root)
        self.kind = kind
        self.base = self.root / kind

    # ----------------------------------------------------------------- publishing
    def publish(
        self,
        name: str,
        write: Callable[[Path], Any],
        *,
        params: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        baselines: dict[str, dict[str, float]] | None = None,
        evaluation: dict[str, Any] | None = None,
        data_range: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write a new version atomically and return its manifest.

        Parameters
        ----------
        name : str
            Artifact name (e.g. ``als``).
        write : callable
            Called with an empty temporary directory to fill with artifact files (for a
            model, ``model.save``).
        params, metrics, baselines, evaluation, data_range, extra : dict, optional
            Recorded in the manifest; ``baselines`` and ``evaluation`` feed the gate.

        Returns
        -------
        dict
            The manifest, including ``version``.
        """
        folder = self.base / name
        folder.mkdir(parents=True, exist_ok=True)
        # What a killed publisher left (never visible as a version: versions start with "v").
        atomic.remove_stale(folder, "tmp")
        tmp = folder / atomic.temp_name("tmp", "d")
        tmp.mkdir()
        try:
            write(tmp)
            files = {
                str(p.relative_to(tmp)): _sha256(p)
                for p in sorted(tmp.rglob("*"))
                if p.is_file() and p.name != MANIFEST
            }
            manifest = {
                "kind": self.kind,
                "name": name,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "code_version": code_version(),
                "params": params or {},
                "metrics": metrics or {},
                "baselines": baselines or {},
                "evaluation": evaluation or {},
                "data_range": data_range or {},
                "files": files,
                **(extra or {}),
            }
            return self._commit_version(folder, tmp, manifest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _commit_version(self, folder: Path, tmp: Path, manifest: dict[str, Any]) -> dict[str, Any]:
        """Rename ``tmp`` to the next free version; a concurrent writer makes us take the next."""
        for _ in range(1000):
            version = _next_version(self.versions(manifest["name"]))
            manifest["version"] = version
            _write_json(tmp / MANIFEST, manifest)
            try:
                os.rename(tmp, folder / version)
            except OSError:
                continue
            return manifest
        raise ArtifactError(f"could not allocate a version for {manifest['name']}")

    # ----------------------------------------------------------------- reading
    def names(self) -> list[str]:
        """Artifact names of this kind."""
        if not self.base.exists():
            return []
        return sorted(p.name for p in self.base.iterdir() if p.is_dir())

    def versions(self, name: str) -> list[str]:
        """Complete versions of ``name`` (temporary folders excluded), oldest first."""
        folder = self.base / name
        if not folder.exists():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name.startswith("v"))

    def path(self, name: str, version: str) -> Path:
        """Directory of one version."""
        return self.base / name / version

    def manifest(self, name: str, version: str) -> dict[str, Any]:
        """Read a version's manifest; :class:`ArtifactError` if missing or unreadable."""
        path = self.path(name, version) / MANIFEST
        if not path.is_file():
            raise ArtifactError(f"{self.kind}/{name}/{version}: manifest.json is missing")
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"{self.kind}/{name}/{version}: corrupt manifest ({exc})") from exc

    def verify(self, name: str, version: str) -> Path:
        """Check every file's checksum against the manifest.

        Parameters
        ----------
        name, version : str
            The artifact version to check.

        Returns
        -------
        pathlib.Path
            The version directory, safe to load.

        Raises
        ------
        ArtifactError
            On a missing manifest, a missing file or a checksum mismatch.
        """
        manifest = self.manifest(name, version)
        folder = self.path(name, version)
        for rel, digest in manifest.get("files", {}).items():
            file = folder / rel
            if not file.is_file():
                raise ArtifactError(f"{self.kind}/{name}/{version}: {rel} is missing")
            if _sha256(file) != digest:
                raise ArtifactError(f"{self.kind}/{name}/{version}: checksum mismatch in {rel}")
        return folder

    # ----------------------------------------------------------------- serving pointer
    def serving_version(self, name: str) -> str | None:
        """Version currently serving, or None."""
        pointer = self._pointer(name)
        return pointer.get("version")

    def promote(
        self,
        name: str,
        version: str,
        gate: PromotionGate | None = None,
        serving_metrics: dict[str, float] | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        """Make ``version`` the serving one if it passes ``gate`` (atomic pointer swap).

        Parameters
        ----------
        name, version : str
            Candidate.
        gate : PromotionGate, optional
            Rules; default :class:`PromotionGate()`.
        serving_metrics : dict, optional
            Current model's metrics on the candidate's evaluation (see the gate).
        force : bool
            Skip the gate (checksums are still verified); recorded in history.

        Returns
        -------
        dict
            The history record of this promotion.

        Raises
        ------
        PromotionRefused
            When the gate refuses.
        ArtifactError
            When the candidate is corrupt.
        """
        self.verify(name, version)
        candidate = self.manifest(name, version)
        pointer = self._pointer(name)
        current = pointer.get("version")
        serving = self.manifest(name, current) if current else None
        decision = (
            {} if force else (gate or PromotionGate()).check(candidate, serving, serving_metrics)
        )
        previous = list(pointer.get("previous", []))
        if current and current != version:
            previous.append(current)
        record = {
            "action": "promote",
            "version": version,
            "from": current,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "forced": force,
            "decision": decision,
        }
        self._swap_pointer(
            name, {"version": version, "previous": previous, "updated": record["at"]}
        )
        self._append_history(name, record)
        return record

    def rollback(self, name: str) -> dict[str, Any]:
        """Serve the previously serving version again (one call, atomic).

        Raises
        ------
        ArtifactError
            When there is nothing to roll back to, or that version is corrupt.
        """
        pointer = self._pointer(name)
        previous = list(pointer.get("previous", []))
        if not previous:
            raise ArtifactError(f"{self.kind}/{name}: no previous version to roll back to")
        target = previous.pop()
        self.verify(name, target)
        record = {
            "action": "rollback",
            "version": target,
            "from": pointer.get("version"),
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self._swap_pointer(name, {"version": target, "previous": previous, "updated": record["at"]})
        self._append_history(name, record)
        return record

    def history(self, name: str) -> list[dict[str, Any]]:
        """Promotion and rollback records, oldest first."""
        path = self.base / name / HISTORY
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def _pointer(self, name: str) -> dict[str, Any]:
        path = self.base / name / POINTER
        if not path.exists():
            return {}
        return json.loads(path.read_text())

    def _swap_pointer(self, name: str, content: dict[str, Any]) -> None:
        folder = self.base / name
        atomic.remove_stale(folder, POINTER)
        tmp = folder / atomic.temp_name(POINTER)
        _write_json(tmp, content)
        os.replace(tmp, folder / POINTER)

    def _append_history(self, name: str, record: dict[str, Any]) -> None:
        with open(self.base / name / HISTORY, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


class ModelRegistry(ArtifactRegistry):
    """:class:`ArtifactRegistry` for recommenders: publish a fitted model, load a verified one."""

    def publish_model(self, model: Any, name: str | None = None, **manifest: Any) -> dict[str, Any]:
        """Save ``model`` (its id maps included) as a new version; see :meth:`publish`."""
        params = manifest.pop("params", None) or model.get_params()
        return self.publish(name or model.name, model.save, params=params, **manifest)

    def load_model(self, name: str, version: str | None = None) -> Any:
        """Load a verified version (default: the serving one) as a :class:`Recommender`."""
        from models.factory import load_model

        version = version or self.serving_version(name)
        if version is None:
            raise ArtifactError(f"{self.kind}/{name}: nothing is serving")
        return load_model(self.verify(name, version))


def code_version() -> str | None:
    """Git commit of the code that produced an artifact, when run from a checkout."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip() or None
    return None


def _next_version(existing: list[str]) -> str:
    numbers = [int(v[1:]) for v in existing if v[1:].isdigit()]
    return f"v{(max(numbers) + 1) if numbers else 1:04d}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_json(path: Path, content: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=2, default=str)
        handle.flush()
        os.fsync(handle.fileno())
