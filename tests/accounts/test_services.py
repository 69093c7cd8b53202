from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from fnplatform.accounts.models import ApiKey
from fnplatform.accounts.services import (
    LAST_USED_RESOLUTION,
    api_key_authenticate,
    api_key_create,
    api_key_list_for,
    api_key_revoke,
    hash_key,
)

pytestmark = pytest.mark.django_db


def test_created_key_authenticates_as_its_owner(bob):
    api_key, key = api_key_create(user=bob, name="laptop")

    assert key.startswith("fnp_")
    assert api_key.prefix == key[:12]
    assert api_key.name == "laptop"
    assert api_key_authenticate(key) == bob


def test_only_the_hash_is_stored_never_the_plaintext(bob):
    api_key, key = api_key_create(user=bob)

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apikey WHERE id = %s", [api_key.pk])
        row = cursor.fetchone()
    assert hash_key(key) in row
    assert all(key not in str(value) for value in row)


def test_each_key_is_unique(bob):
    keys = {api_key_create(user=bob)[1] for _ in range(5)}

    assert len(keys) == 5


def test_create_rejects_a_name_longer_than_the_column(bob):
    with pytest.raises(ValidationError):
        api_key_create(user=bob, name="x" * 101)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param("fnp_not-a-real-key", id="unknown"),
        pytest.param("sk-something-else", id="wrong-prefix"),
    ],
)
def test_unknown_keys_do_not_authenticate(bob, key):
    api_key_create(user=bob)

    assert api_key_authenticate(key) is None


def test_revoked_key_no_longer_authenticates(bob):
    api_key, key = api_key_create(user=bob)

    api_key_revoke(user=bob, api_key=api_key)

    assert api_key.revoked_at is not None
    assert not api_key.is_active
    assert api_key_authenticate(key) is None


def test_key_of_an_inactive_user_does_not_authenticate(bob):
    _, key = api_key_create(user=bob)
    bob.is_active = False
    bob.save()

    assert api_key_authenticate(key) is None


def test_revoke_is_idempotent_and_keeps_the_first_time(bob):
    api_key, _ = api_key_create(user=bob)
    first = api_key_revoke(user=bob, api_key=api_key).revoked_at

    again = api_key_revoke(user=bob, api_key=ApiKey.objects.get(pk=api_key.pk))

    assert again.revoked_at == first


def test_staff_may_revoke_anyones_key(alice, bob):
    api_key, _ = api_key_create(user=bob)

    api_key_revoke(user=alice, api_key=api_key)

    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is not None


def test_others_may_not_revoke_a_key(bob, outsider):
    api_key, key = api_key_create(user=bob)

    with pytest.raises(PermissionDenied):
        api_key_revoke(user=outsider, api_key=api_key)

    assert api_key_authenticate(key) == bob


def test_authenticate_records_first_use(bob):
    api_key, key = api_key_create(user=bob)

    api_key_authenticate(key)

    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_last_used_is_written_at_most_once_a_minute(bob, django_assert_num_queries):
    api_key, key = api_key_create(user=bob)
    recent = timezone.now() - timedelta(seconds=5)
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=recent)

    with django_assert_num_queries(1):  # the lookup only, no UPDATE
        api_key_authenticate(key)

    api_key.refresh_from_db()
    assert api_key.last_used_at == recent


def test_last_used_is_refreshed_once_stale(bob):
    api_key, key = api_key_create(user=bob)
    stale = timezone.now() - LAST_USED_RESOLUTION - timedelta(seconds=1)
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=stale)

    api_key_authenticate(key)

    api_key.refresh_from_db()
    assert api_key.last_used_at > stale


def test_list_for_returns_only_the_users_keys_newest_first(bob, outsider):
    older, _ = api_key_create(user=bob, name="older")
    newer, _ = api_key_create(user=bob, name="newer")
    api_key_create(user=outsider)

    assert list(api_key_list_for(user=bob)) == [newer, older]
