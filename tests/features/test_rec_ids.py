"""Signed rec ids: the warehouse credits a model version only when the shop's MAC verifies."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from features.rec_ids import SECRET_FILE, RecIdVerifier, ServedAs, read_secret
from features.warehouse import register_rec_id_functions

SECRET = ("a shop's signing secret, long enough " * 2).strip()


def _shop_rec_ids():
    """The shop's own minting class."""
    from serving.services.ml.recs.online import RecIds

    return RecIds(SECRET)


def test_ids_the_shop_mints_verify_here() -> None:
    rec_id = _shop_rec_ids().new("cart", "v0007")
    assert RecIdVerifier(SECRET).parse(rec_id) == ServedAs("cart", "v0007")


def test_ids_signed_here_verify_in_the_shop() -> None:
    served = _shop_rec_ids().parse(RecIdVerifier(SECRET).sign("home", "v0002"))
    assert served is not None and (served.surface, served.version) == ("home", "v0002")


@pytest.mark.parametrize(
    "rec_id",
    [
        None,
        42,
        "",
        "rec-1",
        "0" * 32 + ".home.v0001",  # made up
        "not-hex-and-too-long-for-a-nonce.home.v1",
    ],
)
def test_made_up_ids_name_no_version(rec_id: object) -> None:
    assert RecIdVerifier(SECRET).parse(rec_id) is None
    assert RecIdVerifier(SECRET).version(rec_id) is None


def test_an_altered_version_or_another_secret_does_not_verify() -> None:
    rec_id = RecIdVerifier(SECRET).sign("home", "v0001", nonce="0123456789abcdef")
    assert RecIdVerifier(SECRET).version(rec_id) == "v0001"
    assert RecIdVerifier(SECRET).version(rec_id.replace("v0001", "v0002")) is None
    assert RecIdVerifier("another shop's secret " * 3).version(rec_id) is None


def test_a_verifier_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        RecIdVerifier("")


def test_secret_from_environment_then_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.delenv("STORELOOP_JWT_SECRET", raising=False)
    assert read_secret(tmp_path) is None
    assert not (tmp_path / SECRET_FILE).exists()  # a reader never creates a secret
    (tmp_path / SECRET_FILE).write_text(SECRET + "\n")
    assert read_secret(tmp_path) == SECRET
    monkeypatch.setenv("STORELOOP_JWT_SECRET", "from the environment " * 2)
    assert read_secret(tmp_path) == "from the environment " * 2


def test_warehouse_functions_return_only_verified_versions() -> None:
    verifier = RecIdVerifier(SECRET)
    signed = verifier.sign("product", "v0003")
    con = duckdb.connect()
    register_rec_id_functions(con, verifier)
    register_rec_id_functions(con, verifier)  # re-registering on one connection is fine
    rows = con.execute(
        "SELECT rec_served_version(x), rec_served_surface(x) FROM (VALUES (?), (?), (NULL)) t(x)",
        [signed, "0" * 32 + ".home.v9"],
    ).fetchall()
    assert rows == [("v0003", "product"), (None, None), (None, None)]
    register_rec_id_functions(con, None)  # the shop's secret is unknown: nothing verifies
    assert con.execute("SELECT rec_served_version(?)", [signed]).fetchall() == [(None,)]
