"""Shared artifacts: two API hosts with their own DATA_DIRs read one registry folder.

The pipelines publish into the shared registry (``STORELOOP_REGISTRY_DIR``); both hosts follow
its serving pointer and hot-reload the same version. The lake follows ``STORELOOP_LAKE_DIR``.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi.testclient import TestClient

from pipelines.resources import build_resources
from serving.app import create_app
from serving.core.config import Settings
from tests.serving_ml.conftest import publish_model, wait_for


def _host(settings: Settings, name: str, shared: Path) -> Settings:
    return settings.model_copy(
        update={
            "data_dir": settings.data_dir.parent / name,
            "registry_dir": shared / "registry",
            "lake_dir": shared / "lake",
            "recs_reload_seconds": 0.05,
            "jwt_secret_value": secrets.token_urlsafe(48),
        }
    )


def test_two_hosts_serve_the_version_published_to_the_shared_registry(
    settings: Settings, small_catalog, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    hosts = [_host(settings, name, shared) for name in ("host_a", "host_b")]
    ids = [p["id"] for p in small_catalog["products"].values()][:4]
    pairs = [(u, ids[u % 4]) for u in range(5000, 5040)] + [
        (u, ids[(u + 1) % 4]) for u in range(5000, 5040)
    ]
    with TestClient(create_app(hosts[0])) as a, TestClient(create_app(hosts[1])) as b:
        servings = [a.app.state.components.recs, b.app.state.components.recs]

        def versions() -> list[str | None]:
            return [s.current.version if s.current else None for s in servings]

        v1 = publish_model(hosts[0], pairs)  # what the pipeline host does
        wait_for(lambda: versions() == [v1, v1], what="both hosts on v1")
        v2 = publish_model(hosts[1], pairs, factors=4)
        wait_for(lambda: versions() == [v2, v2], what="both hosts on v2")
    assert (shared / "registry" / "recs").is_dir()
    assert not (hosts[0].data_dir / "registry" / "recs").exists(), "nothing under DATA_DIR"


def test_pipelines_resources_follow_the_shared_locations(tmp_path: Path) -> None:
    resources = build_resources(
        tmp_path / "data",
        "sqlite:///x.db",
        registry_dir=tmp_path / "shared" / "registry",
        lake_dir=tmp_path / "shared" / "lake",
    )
    assert resources["registry"].directory == tmp_path / "shared" / "registry"
    assert resources["lake"].directory == tmp_path / "shared" / "lake"
    assert resources["events"].directory == tmp_path / "data" / "events"
