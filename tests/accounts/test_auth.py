import pytest
from django.test import RequestFactory

from fnplatform.accounts.auth import ApiKeyAuth
from fnplatform.accounts.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def call_auth(header: str | None):
    headers = {"Authorization": header} if header is not None else {}
    request = RequestFactory().get("/api/v1/functions/", headers=headers)
    return ApiKeyAuth()(request)


def test_bearer_key_authenticates_as_the_user(bob):
    _, key = api_key_create(user=bob)

    assert call_auth(f"Bearer {key}") == bob


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(None, id="missing"),
        pytest.param("Bearer fnp_wrong", id="wrong-key"),
        pytest.param("Basic Ym9iOnB3", id="other-scheme"),
    ],
)
def test_anything_else_is_not_authenticated(bob, header):
    api_key_create(user=bob)

    assert call_auth(header) is None


def test_revoked_key_is_not_authenticated(bob):
    api_key, key = api_key_create(user=bob)
    api_key_revoke(user=bob, api_key=api_key)

    assert call_auth(f"Bearer {key}") is None


def test_a_signin_token_authenticates_and_is_kept_on_the_request(bob):
    from fnplatform.accounts.services import signin

    token, plaintext = signin(login="bob", password="pw-bob")[1:]
    request = RequestFactory().get("/", headers={"Authorization": f"Bearer {plaintext}"})

    assert ApiKeyAuth()(request) == bob
    assert request.credential == token
    assert request.bearer_token == plaintext
