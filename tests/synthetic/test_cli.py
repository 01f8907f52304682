"""``storeloop simulate`` reaches the simulator through the entry point, with its old flags."""

from __future__ import annotations

import pytest

from serving.cli import build_parser, main


def test_simulate_keeps_its_flags_and_live_mode() -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["simulate", "--seed", "3", "--users", "10", "--products", "20", "--days", "2"]
        + ["--workers", "1", "--no-truth", "--target", "inprocess", "--quiet"]
    )
    assert (args.seed, args.users, args.products, args.days, args.workers) == (3, 10, 20, 2, 1)
    assert args.no_truth and args.quiet and args.target == "inprocess"
    live = parser.parse_args(["simulate", "live", "--target", "http://x", "--shoppers", "4"])
    assert (live.simulate_mode, live.shoppers, live.think) == ("live", 4, 2.0)


def test_url_target_without_admin_is_one_line_and_exit_2(monkeypatch, capsys) -> None:
    monkeypatch.delenv("STORELOOP_ADMIN_EMAIL", raising=False)
    monkeypatch.delenv("STORELOOP_ADMIN_PASSWORD", raising=False)
    assert main(["simulate", "--target", "http://127.0.0.1:9", "--quiet"]) == 2
    assert capsys.readouterr().out.strip() == (
        "error: a URL target needs --admin-email/--admin-password (or env)"
    )


@pytest.mark.parametrize("argv", [["simulate", "live"], ["simulate", "--live", "3"]])
def test_live_mode_needs_a_running_server(argv: list[str], capsys) -> None:
    assert main(argv) == 2
    assert "live mode needs a running server" in capsys.readouterr().out
