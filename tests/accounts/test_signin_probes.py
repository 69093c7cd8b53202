"""Sign-in and the users endpoints against a caller probing them (timing, old tokens,
huge pages)."""

import json

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def _count_hashes(monkeypatch):
    """Count password hashes computed (verify computes one through encode)."""
    from django.contrib.auth import hashers

    calls = {"n": 0}
    for name in ("encode",):
        original = getattr(hashers.MD5PasswordHasher, name)

        def counted(self, *args, _original=original, **kwargs):
            calls["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(hashers.MD5PasswordHasher, name, counted)
    return calls


def _signin(login):
    return Client().post(
        "/api/v1/auths/signin",
        json.dumps({"email": login, "password": "wrong-password"}),
        content_type="application/json",
    )


def test_signin_costs_the_same_for_a_registered_and_an_unknown_email(bob, monkeypatch):
    calls = _count_hashes(monkeypatch)
    assert _signin("nobody@example.com").status_code == 400
    unknown = calls["n"]
    calls["n"] = 0
    assert _signin("bob@example.com").status_code == 400  # bob's username is "bob"
    registered = calls["n"]
    # One password hash either way: the time taken does not tell registered emails apart.
    assert registered == unknown == 1, (unknown, registered)


def test_a_huge_page_number_is_a_4xx_not_a_500(alice):
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    response = client.get("/api/v1/users/", {"page": 10**18})
    assert response.status_code == 422, response.status_code


def test_a_password_change_revokes_sign_in_tokens(bob):
    token = json.loads(
        Client()
        .post(
            "/api/v1/auths/signin",
            json.dumps({"email": "bob", "password": "pw-bob"}),
            content_type="application/json",
        )
        .content
    )["token"]
    bob.set_password("a-new-password-1")
    bob.save()
    response = Client().get("/api/v1/auths/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401, response.status_code
