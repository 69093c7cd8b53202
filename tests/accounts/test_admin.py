import json
import re

import pytest
from django.contrib.messages import get_messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.contrib.sessions.models import Session
from django.urls import reverse

from fnplatform.accounts.models import ApiKey
from fnplatform.accounts.services import api_key_authenticate, api_key_create

pytestmark = pytest.mark.django_db

CHANGELIST_URL = reverse("admin:accounts_apikey_changelist")


def test_changelist_shows_keys_without_hashes(alice_client, bob):
    api_key, _ = api_key_create(user=bob, name="bob-laptop")

    response = alice_client.get(CHANGELIST_URL)

    assert response.status_code == 200
    assert api_key.prefix in response.text
    assert api_key.key_hash not in response.text


def test_add_generates_a_key_and_shows_it_once_in_the_page(alice_client, bob):
    response = alice_client.post(
        reverse("admin:accounts_apikey_add"), {"user": bob.pk, "name": "from-admin"}
    )

    assert response.status_code == 200
    api_key = ApiKey.objects.get(name="from-admin")
    key = re.search(r'<code id="new-api-key">(fnp_[^<]+)</code>', response.text).group(1)
    assert api_key_authenticate(key) == bob
    assert api_key.key_hash != key and api_key.key_hash not in response.text
    assert response.text.count(key) == 1
    assert "no-store" in response["Cache-Control"]


def test_the_new_key_is_in_no_cookie_message_or_session(alice_client, bob):
    response = alice_client.post(
        reverse("admin:accounts_apikey_add"), {"user": bob.pk, "name": "from-admin"}
    )
    key = re.search(r'id="new-api-key">(fnp_[^<]+)<', response.text).group(1)

    assert all(key not in morsel.value for morsel in response.cookies.values())
    # The messages cookie is signed and compressed, so decode it to look inside.
    if "messages" in response.cookies:
        stored = CookieStorage(response.wsgi_request)._decode(response.cookies["messages"].value)
        assert all(key not in str(m) for m in stored or [])
    assert all(key not in str(m) for m in get_messages(response.wsgi_request))
    session = Session.objects.get(session_key=alice_client.session.session_key)
    assert key not in json.dumps(session.get_decoded())
    # The next page shows no leftover message with it either.
    assert key not in alice_client.get(CHANGELIST_URL).text


def test_change_page_is_read_only(alice_client, bob):
    api_key, _ = api_key_create(user=bob, name="before")

    response = alice_client.get(reverse("admin:accounts_apikey_change", args=[api_key.pk]))

    assert response.status_code == 200
    assert 'name="name"' not in response.text
    assert api_key.key_hash not in response.text


def test_revoke_action_revokes_the_selected_keys(alice_client, bob):
    picked, picked_key = api_key_create(user=bob)
    _, other_key = api_key_create(user=bob)

    response = alice_client.post(
        CHANGELIST_URL, {"action": "revoke_selected", "_selected_action": [picked.pk]}
    )

    assert response.status_code == 302
    assert api_key_authenticate(picked_key) is None
    assert api_key_authenticate(other_key) == bob


def test_add_page_asks_only_for_owner_and_name(alice_client):
    response = alice_client.get(reverse("admin:accounts_apikey_add"))

    assert response.status_code == 200
    assert 'name="user"' in response.text and 'name="name"' in response.text
    assert 'name="key_hash"' not in response.text and 'name="prefix"' not in response.text


def test_signin_tokens_are_listed_without_hashes_and_revoked_by_the_action(alice_client, bob):
    from fnplatform.accounts.models import SigninToken
    from fnplatform.accounts.services import bearer_authenticate, signin

    token, plaintext = signin(login="bob", password="pw-bob")[1:]
    url = reverse("admin:accounts_signintoken_changelist")

    page = alice_client.get(url)
    assert page.status_code == 200
    assert token.prefix in page.text and token.token_hash not in page.text
    assert alice_client.get(reverse("admin:accounts_signintoken_add")).status_code == 403

    alice_client.post(url, {"action": "revoke_selected", "_selected_action": [token.pk]})
    assert SigninToken.objects.get(pk=token.pk).revoked_at is not None
    assert bearer_authenticate(plaintext) is None
