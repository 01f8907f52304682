"""``recs evaluate`` and ``search evaluate`` on users' bad files and flags (issue 18).

Each case used to end in a traceback or in rc 0 with a table of zeros; now each is one clear
line on stderr and exit code 2 (or, for a partly usable file, a warning that says why).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from serving.cli import main

GOOD_RATINGS = "user,item,timestamp,rating\n" + "".join(
    f"u{u},i{(u * 7 + j) % 13},{1000 + u * 20 + j},{1 + (u + j) % 5}\n"
    for u in range(12)
    for j in range(6)
)


@pytest.fixture
def ratings(tmp_path: Path):
    def write(text: str = GOOD_RATINGS, name: str = "r.csv") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


def _recs(*args: str) -> int:
    return main(["recs", "evaluate", *args, "--models", "popular", "--no-tune"])


def _one_line_exit_2(code: int, capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def test_good_file_still_evaluates(ratings, tmp_path, capsys):
    out = tmp_path / "out.json"
    assert _recs(ratings(), "--json", str(out)) == 0
    assert json.loads(out.read_text())[0]["model"] == "popular"


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--k", "0"], "--k must be at least 1"),
        (["--k", "-3"], "--k must be at least 1"),
        (["--test-fraction", "2"], "--test-fraction must be between 0 and 1"),
        (["--test-fraction", "0"], "--test-fraction must be between 0 and 1"),
    ],
)
def test_recs_bad_flags(ratings, capsys, flags, needle):
    _one_line_exit_2(_recs(ratings(), *flags), capsys, needle)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("user,item,timestamp,rating\nu1,i1,1,5\nu2,i2,2,great\n", "'great' on line 3"),
        ("user,item,timestamp,rating\n", "no rows"),
        ("user,item,timestamp,rating\n,,,\n,,,\n", "no rows"),
        ("user,item,timestamp,rating\nu1,i1,1,5\nu1,i2,2,4\nu1,i3,3,3\n", "at least two users"),
        ("user,item,timestamp,rating\nu1,i1,1,5\nu2,i2,2,nan\nu3,i1,3,inf\n", "'inf' on line 4"),
    ],
)
def test_recs_unusable_files(ratings, capsys, text, needle):
    _one_line_exit_2(_recs(ratings(text)), capsys, needle)


def test_recs_min_rating_above_every_rating(ratings, capsys):
    _one_line_exit_2(_recs(ratings(), "--min-rating", "6"), capsys, "above every rating")


def test_recs_unwritable_json_is_refused_before_evaluating(ratings, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    _one_line_exit_2(_recs(ratings(), "--json", str(blocker / "y.json")), capsys, "--json")
    _one_line_exit_2(_recs(ratings(), "--json", str(tmp_path)), capsys, "is a directory")


def test_recs_json_does_not_create_missing_directories(ratings, tmp_path, capsys):
    target = tmp_path / "x" / "y.json"
    _one_line_exit_2(_recs(ratings(), "--json", str(target)), capsys, "does not exist")
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------ search evaluate

CATALOG = "product_id,title\n" + "".join(f"p{i},red shoe model {i}\n" for i in range(20))


@pytest.fixture
def search_files(tmp_path: Path):
    def write(judgments: str, catalog: str = CATALOG) -> list[str]:
        (tmp_path / "catalog.csv").write_text(catalog)
        (tmp_path / "judgments.csv").write_text(judgments)
        return ["--catalog", str(tmp_path / "catalog.csv")] + [
            "--judgments",
            str(tmp_path / "judgments.csv"),
        ]

    return write


def _search(*args: str) -> int:
    return main(["search", "evaluate", *args])


def test_search_good_judgments_still_evaluate(search_files, capsys):
    assert _search(*search_files("query,product_id,grade\nred shoe,p1,3\nshoe,p2,1\n")) == 0
    assert "nan" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("judgments", "needle"),
    [
        ("query,product_id,grade\nshoe,p1,1e308\n", "outside 0 to 100"),
        ("query,product_id,grade\nshoe,p1,high\n", "'high' on line 2"),
        ("query,product_id,grade\n", "no judgments"),
        ("query,product_id,grade\n  ,p1,2\nshoe,p2,1\n", "blank query (first on line 2)"),
        ("query,product_id,grade\nshoe,nope1,2\nboot,nope2,3\n", "no relevant judged product"),
        ("query,product_id,grade\nshoe,p1,0\n", "no judgment has a grade above 0"),
    ],
)
def test_search_unusable_judgments(search_files, capsys, judgments, needle):
    _one_line_exit_2(_search(*search_files(judgments)), capsys, needle)


def test_search_bad_k_and_json(search_files, tmp_path, capsys):
    files = search_files("query,product_id,grade\nshoe,p1,2\n")
    for k in ("0", "-3"):
        _one_line_exit_2(_search(*files, "--k", k), capsys, "--k must be at least 1")
    target = tmp_path / "x" / "y.json"
    _one_line_exit_2(_search(*files, "--json", str(target)), capsys, "does not exist")
    assert not (tmp_path / "x").exists()


def test_search_unknown_products_warn(search_files, capsys):
    files = search_files("query,product_id,grade\nred shoe,p1,3\nshoe,gone,2\n")
    assert _search(*files) == 0
    assert "1 of 2 relevant judgments name products not in" in capsys.readouterr().err


# ------------------------------------------------------------------ the one Settings


def test_registry_commands_read_data_dir(tmp_path, monkeypatch, capsys):
    """``DATA_DIR`` (not only STORELOOP_DATA_DIR) picks the registry, as the server reads it."""
    from recs_toy import make_two_blocks

    from models.factory import build_model
    from models.registry import ModelRegistry

    monkeypatch.delenv("STORELOOP_DATA_DIR", raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "shop"))
    monkeypatch.chdir(tmp_path)  # a stray ./data here must not be the one acted on
    registry = ModelRegistry(tmp_path / "shop" / "registry", kind="recs")
    model = build_model("item2item").fit(make_two_blocks())
    for ndcg in (0.3, 0.35):
        registry.publish_model(
            model, metrics={"ndcg@10": ndcg}, baselines={"popular": {"ndcg@10": 0.1}}
        )
    assert main(["recs", "promote", "item2item", "v0001"]) == 0
    assert main(["recs", "promote", "item2item", "v0002"]) == 0
    assert main(["recs", "list"]) == 0
    assert "* item2item" in capsys.readouterr().out
    assert main(["recs", "rollback", "item2item"]) == 0
    assert registry.serving_version("item2item") == "v0001"
    assert not (tmp_path / "data").exists()


def test_search_evaluate_follows_elasticsearch_url(search_files, monkeypatch, capsys):
    """With ELASTICSEARCH_URL set, the default backend is Elasticsearch at that URL."""
    monkeypatch.setenv("ELASTICSEARCH_URL", "http://127.0.0.1:1")
    code = _search(*search_files("query,product_id,grade\nshoe,p1,2\n"))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "127.0.0.1:1" in err or "elasticsearch" in err.lower(), err


def test_read_ratings_keeps_line_numbers_after_blank_rows(ratings, capsys):
    text = "user,item,timestamp,rating\nu1,i1,1,5\n,,,\nu2,i2,2,x\n"
    _one_line_exit_2(_recs(ratings(text)), capsys, "'x' on line 4")
    assert pd.__version__  # pandas reads the file (labels survive dropna)
