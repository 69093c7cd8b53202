"""The API keys through the whole stack: header, ninja auth list, a real endpoint."""

import pytest

from fnplatform.accounts.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db

URL = "/api/v1/functions/"


def test_bearer_key_opens_the_api(client, bob):
    _, key = api_key_create(user=bob)

    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {key}")

    assert response.status_code == 200
    assert response.json() == []


def test_wrong_key_is_401(client, bob):
    api_key_create(user=bob)

    assert client.get(URL, HTTP_AUTHORIZATION="Bearer fnp_wrong").status_code == 401


def test_revoked_key_is_401(client, bob):
    api_key, key = api_key_create(user=bob)
    api_key_revoke(user=bob, api_key=api_key)

    assert client.get(URL, HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 401


def test_no_credentials_is_401(client):
    assert client.get(URL).status_code == 401


def test_session_still_works_alongside_keys(bob_client):
    assert bob_client.get(URL).status_code == 200
