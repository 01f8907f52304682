"""The registry mirror against a real S3 HTTP API, through s3fs and fsspec.

The S3-compatible server is moto's (``moto[server]``, pinned in the ``dev`` extra that
``make install`` installs), started by each test on a free loopback port; s3fs reaches it the
way a host reaches its object store, from the environment only (``AWS_ENDPOINT_URL_S3`` and
keys), including the ``python -m models.artifact_sync`` processes these tests start.

Proved here: a push uploads every version file before the pointers that name it (the order
the server received the PUTs in), a pulled registry loads and verifies, and an API host whose
registry is fed by ``artifact_sync pull s3://… --every`` hot-reloads each version the pipeline
publishes.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from models.artifact_sync import POINTERS, sync
from models.registry import ModelRegistry
from models.search.documents import ProductDocument
from models.search.index_store import IndexStore, verify
from models.search.service import SearchService
from serving.app import create_app
from serving.core.config import Settings
from tests.serving_ml.conftest import publish_model, wait_for

threaded_moto = pytest.importorskip(
    "moto.moto_server.threaded_moto_server",
    reason="moto[server] is not installed (pip install -e '.[dev]'): no S3-compatible server",
)
s3fs = pytest.importorskip("s3fs", reason="s3fs is not installed (pip install -e '.[distributed]')")

ROOT = Path(__file__).resolve().parents[2]
_PUT = re.compile(r'"PUT /([^/ ?]+)/([^ ?]+) HTTP')


@dataclass
class S3:
    """A bucket on the test's S3 server, and the object PUTs the server answered, in order."""

    fs: object
    bucket: str
    env: dict[str, str]
    puts: list[str] = field(default_factory=list)

    def url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"


class _PutLog(logging.Handler):
    """Collects the server's access log: werkzeug logs a request once it has been answered."""

    def __init__(self, bucket: str, puts: list[str]) -> None:
        super().__init__()
        self.bucket, self.puts = bucket, puts

    def emit(self, record: logging.LogRecord) -> None:
        match = _PUT.search(record.getMessage())
        if match and match.group(1) == self.bucket and " 200 " in record.getMessage():
            self.puts.append(match.group(2))


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3]:
    server = threaded_moto.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL_S3": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "storeloop-test",
        "AWS_SECRET_ACCESS_KEY": "storeloop-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s3fs.S3FileSystem.clear_instance_cache()  # a cached client would still name the old port
    bucket = f"storeloop-{uuid.uuid4().hex[:12]}"
    store = S3(s3fs.S3FileSystem(), bucket, env)
    access_log = logging.getLogger("werkzeug")
    handler = _PutLog(bucket, store.puts)
    access_log.addHandler(handler)
    level = access_log.level
    access_log.setLevel(logging.INFO)
    try:
        store.fs.call_s3("create_bucket", Bucket=bucket)
        yield store
    finally:
        access_log.removeHandler(handler)
        access_log.setLevel(level)
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


def _index(registry: Path, titles: list[str]) -> str:
    """Build and publish a search index version into ``registry`` (as the pipeline does)."""
    docs = [
        ProductDocument(product_id=str(n), title=t, brand="Acme", price=1000 + n)
        for n, t in enumerate(titles)
    ]
    service = SearchService(IndexStore(registry / "search_index"))
    return service.build(docs)


def _settings(settings: Settings, name: str, registry: Path) -> Settings:
    return settings.model_copy(
        update={"data_dir": settings.data_dir.parent / name, "registry_dir": registry}
    )


def test_push_uploads_every_file_before_the_pointer_that_names_it(
    s3: S3, settings: Settings, small_catalog, tmp_path: Path
) -> None:
    pipeline = _settings(settings, "pipeline", tmp_path / "pipeline" / "registry")
    ids = [p["id"] for p in small_catalog["products"].values()][:4]
    version = publish_model(pipeline, [(u, ids[u % 4]) for u in range(100, 140)])
    index = _index(pipeline.registry_path, ["red wool scarf", "blue cotton shirt", "green mug"])

    result = sync(str(pipeline.registry_path), s3.url("registry"))

    assert sorted(result.pointers) == ["recs/als/serving.json", "search_index/CURRENT"]
    prefix = "registry/"
    uploaded = [key.removeprefix(prefix) for key in s3.puts if key.startswith(prefix)]
    assert sorted(uploaded) == sorted(result.copied + result.pointers), "every copy was a PUT"
    first_pointer = min(i for i, key in enumerate(uploaded) if key.rsplit("/", 1)[-1] in POINTERS)
    named = [k for k in uploaded if f"/{version}/" in k or f"/versions/{index}/" in k]
    assert named and all(uploaded.index(k) < first_pointer for k in named), uploaded
    # What another host reads back from the bucket is whole and verifies.
    host = tmp_path / "host" / "registry"
    sync(s3.url("registry"), str(host))
    assert ModelRegistry(host, kind="recs").serving_version("als") == version
    ModelRegistry(host, kind="recs").load_model("als", version)  # checks every sha256
    store = IndexStore(host / "search_index")
    assert store.current() == index
    assert verify(store.path(index))["doc_count"] == 3


def test_host_fed_from_s3_hot_reloads_each_published_version(
    s3: S3, settings: Settings, small_catalog, tmp_path: Path
) -> None:
    pipeline = _settings(settings, "pipeline", tmp_path / "pipeline" / "registry")
    host = _settings(settings, "host", tmp_path / "mirror" / "registry")
    ids = [p["id"] for p in small_catalog["products"].values()][:4]
    pairs = [(u, ids[u % 4]) for u in range(5000, 5040)] + [
        (u, ids[(u + 1) % 4]) for u in range(5000, 5040)
    ]
    bucket = s3.url("registry")
    log = tmp_path / "pull.log"
    with open(log, "wb") as out:
        # What runs beside each API host: the mirror, from the environment's S3 settings.
        puller = subprocess.Popen(
            [sys.executable, "-m", "models.artifact_sync", "pull", bucket]
            + [str(host.registry_path), "--every", "0.1"],
            cwd=ROOT,
            env={**os.environ, **s3.env, "PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        with TestClient(create_app(host)) as client:
            serving = client.app.state.components.recs

            def current() -> str | None:
                return serving.current.version if serving.current else None

            v1 = publish_model(pipeline, pairs)
            sync(str(pipeline.registry_path), bucket)  # the pipeline host's push
            wait_for(lambda: current() == v1, timeout=60, what="the host on v1 from S3")
            v2 = publish_model(pipeline, pairs, factors=4)
            sync(str(pipeline.registry_path), bucket)
            wait_for(lambda: current() == v2, timeout=60, what="the host on v2 from S3")
    finally:
        puller.terminate()
        puller.wait(timeout=30)
    assert ModelRegistry(host.registry_path, kind="recs").serving_version("als") == v2
    output = log.read_text("utf-8", "replace")
    assert "error" not in output.lower(), output
    assert not (host.data_dir / "registry" / "recs").exists(), "the host reads the mirror only"
