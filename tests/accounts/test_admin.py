import pytest
from django.contrib.messages import get_messages
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


def test_add_generates_a_key_and_shows_it_once(alice_client, bob):
    response = alice_client.post(
        reverse("admin:accounts_apikey_add"), {"user": bob.pk, "name": "from-admin"}
    )

    assert response.status_code == 302
    api_key = ApiKey.objects.get(name="from-admin")
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    key = next(t for t in texts if "fnp_" in t).rsplit(" ", 1)[-1]
    assert api_key_authenticate(key) == bob
    assert api_key.key_hash != key


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
