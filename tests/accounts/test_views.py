import json

import pytest
from django.contrib.messages import get_messages
from django.contrib.sessions.models import Session
from django.urls import reverse

from fnplatform.accounts.models import ApiKey
from fnplatform.accounts.services import api_key_authenticate, api_key_create

pytestmark = pytest.mark.django_db

SETTINGS_URL = reverse("accounts:settings")
CREATE_URL = reverse("accounts:create_key")
HTMX = {"HTTP_HX_REQUEST": "true"}


def revoke_url(api_key: ApiKey) -> str:
    return reverse("accounts:revoke_key", args=[api_key.pk])


@pytest.mark.parametrize(
    ("method", "url"),
    [
        pytest.param("get", SETTINGS_URL, id="settings"),
        pytest.param("post", CREATE_URL, id="create"),
    ],
)
def test_anonymous_users_are_sent_to_log_in(client, method, url):
    response = getattr(client, method)(url)

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_settings_lists_only_own_keys(bob_client, bob, outsider):
    mine, _ = api_key_create(user=bob, name="bob-laptop")
    theirs, _ = api_key_create(user=outsider, name="eve-server")

    response = bob_client.get(SETTINGS_URL)

    assert response.status_code == 200
    assert mine.dom_id in response.text and "bob-laptop" in response.text
    assert theirs.dom_id not in response.text and "eve-server" not in response.text


def test_settings_links_to_plugin_settings(bob_client):
    response = bob_client.get(SETTINGS_URL)

    assert 'href="/valves/"' in response.text
    assert "My plugin settings" in response.text


def test_create_shows_the_new_key_once(bob_client, bob):
    response = bob_client.post(CREATE_URL, {"name": "ci"})

    assert response.status_code == 200
    key = response.context["new_key"]
    assert key in response.text
    assert api_key_authenticate(key) == bob
    assert "no-store" in response["Cache-Control"]
    assert key not in bob_client.get(SETTINGS_URL).text


def test_the_new_key_is_in_no_cookie_message_or_session(bob_client):
    response = bob_client.post(CREATE_URL, {"name": "ci"})
    key = response.context["new_key"]

    assert response.text.count(key) == 1
    assert all(key not in morsel.value for morsel in response.cookies.values())
    assert all(key not in str(m) for m in get_messages(response.wsgi_request))
    session = Session.objects.get(session_key=bob_client.session.session_key)
    assert key not in json.dumps(session.get_decoded())


def test_create_rejects_a_too_long_name(bob_client, bob):
    response = bob_client.post(CREATE_URL, {"name": "x" * 101})

    assert response.status_code == 200
    assert response.context["form"].errors
    assert not ApiKey.objects.filter(user=bob).exists()


def test_htmx_create_returns_only_the_keys_partial(bob_client):
    response = bob_client.post(CREATE_URL, {"name": "ci"}, **HTMX)

    assert response.status_code == 200
    assert 'id="api-keys"' in response.text
    assert response.context["new_key"] in response.text
    assert "<html" not in response.text


def test_htmx_settings_returns_only_the_keys_partial(bob_client):
    response = bob_client.get(SETTINGS_URL, **HTMX)

    assert 'id="api-keys"' in response.text
    assert "<html" not in response.text


def test_revoke_own_key(bob_client, bob):
    api_key, key = api_key_create(user=bob)

    response = bob_client.post(revoke_url(api_key))

    assert response.status_code == 302
    assert response.url == SETTINGS_URL
    assert api_key_authenticate(key) is None


def test_htmx_revoke_returns_the_partial_showing_it_revoked(bob_client, bob):
    api_key, _ = api_key_create(user=bob)

    response = bob_client.post(revoke_url(api_key), **HTMX)

    assert response.status_code == 200
    assert "<html" not in response.text
    assert "revoked" in response.text


def test_revoking_someone_elses_key_is_not_found(bob_client, outsider):
    api_key, key = api_key_create(user=outsider)

    response = bob_client.post(revoke_url(api_key))

    assert response.status_code == 404
    assert api_key_authenticate(key) == outsider


def test_revoke_needs_post(bob_client, bob):
    api_key, _ = api_key_create(user=bob)

    assert bob_client.get(revoke_url(api_key)).status_code == 405


def test_create_needs_a_csrf_token(bob):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)

    assert client.post(CREATE_URL, {"name": "x"}).status_code == 403
