"""Registration refuses common and easily guessed passwords (issue 18, "Accounts")."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "password", ["12345678", "password", " " * 8, "qwertyuiop", "iloveyou1", "aaaaaaaaaaaa"]
)
def test_common_and_trivial_passwords_are_refused(client, password):
    r = client.post(
        "/api/v1/auth/register", json={"email": "weak@example.com", "password": password}
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["title"] == "Weak password"
    assert body["detail"].startswith("Choose a harder password: ")
    assert isinstance(body["suggestions"], list)


def test_password_made_of_the_accounts_own_name_is_refused(client):
    r = client.post(
        "/api/v1/auth/register",
        json={"email": "ada.lovelace@example.com", "password": "lovelace-ada", "full_name": "Ada"},
    )
    assert r.status_code == 422, r.text


def test_a_strong_password_is_accepted(client):
    r = client.post(
        "/api/v1/auth/register",
        json={"email": "strong@example.com", "password": "kestrel-harbour-7"},
    )
    assert r.status_code == 201, r.text


def test_a_long_password_is_judged_quickly_by_its_prefix(client):
    """Only the first 32 characters are judged: a 128-character password is no CPU sink."""
    import secrets
    import string

    password = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(128))
    r = client.post(
        "/api/v1/auth/register", json={"email": "long@example.com", "password": password}
    )
    assert r.status_code == 201, r.text
    weak_prefix = "a" * 64 + password[:64]
    r = client.post(
        "/api/v1/auth/register", json={"email": "long2@example.com", "password": weak_prefix}
    )
    assert r.status_code == 422


def test_create_admin_refuses_a_weak_password(capsys, tmp_path, monkeypatch):
    from serving.cli import main

    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    code = main(["create-admin", "--email", "root@example.com", "--password", "password1"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Choose a harder password") and len(err.splitlines()) == 1
