from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from fnplatform.accounts.models import ApiKey, SigninToken
from fnplatform.accounts.services import (
    INVALID_CREDENTIALS,
    LAST_USED_RESOLUTION,
    TOKEN_PREFIX,
    account_key_create,
    account_key_for,
    account_key_revoke,
    api_key_authenticate,
    api_key_create,
    api_key_list_for,
    api_key_revoke,
    bearer_authenticate,
    hash_key,
    signin,
    signin_token_create,
    signin_token_revoke,
    user_create,
    user_role,
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

    with django_assert_num_queries(2):  # the generation and the lookup, no UPDATE
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


# The account key (Open WebUI's one key per account)


def test_account_key_create_keeps_one_live_account_key(bob):
    first, _ = account_key_create(user=bob)
    second, key = account_key_create(user=bob)

    first.refresh_from_db()
    assert first.revoked_at is not None
    assert account_key_for(user=bob) == second
    assert api_key_authenticate(key) == bob


def test_the_database_refuses_two_live_account_keys(bob):
    from django.db import IntegrityError, transaction

    account_key_create(user=bob)
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiKey.objects.create(user=bob, prefix="x", key_hash="x" * 64, is_account_key=True)


def test_account_key_for_someone_without_one_is_does_not_exist(bob):
    api_key_create(user=bob)  # a named key is not the account key

    with pytest.raises(ApiKey.DoesNotExist):
        account_key_for(user=bob)


def test_account_key_revoke_counts_what_it_revoked(bob):
    assert account_key_revoke(user=bob) == 0
    account_key_create(user=bob)
    assert account_key_revoke(user=bob) == 1


# Sign-in tokens


def test_signin_gives_a_token_that_bearer_auth_accepts(bob):
    user, token, plaintext = signin(login="bob", password="pw-bob")

    assert user == bob
    assert plaintext.startswith(TOKEN_PREFIX)
    assert bearer_authenticate(plaintext) == token
    assert api_key_authenticate(plaintext) is None  # not an API key


def test_signin_refuses_wrong_credentials_with_one_message(bob):
    with pytest.raises(ValidationError) as caught:
        signin(login="bob", password="nope")

    assert caught.value.code == "invalid_credentials"
    assert caught.value.messages == [INVALID_CREDENTIALS]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"revoked_at": timezone.now()}, id="revoked"),
        pytest.param({"expires_at": timezone.now() - timedelta(seconds=1)}, id="expired"),
    ],
)
def test_dead_tokens_do_not_authenticate(bob, change):
    _, _, plaintext = signin(login="bob", password="pw-bob")

    SigninToken.objects.update(**change)

    assert bearer_authenticate(plaintext) is None


def test_a_token_of_a_deactivated_user_does_not_authenticate(bob):
    _, _, plaintext = signin(login="bob", password="pw-bob")
    bob.is_active = False
    bob.save()

    assert bearer_authenticate(plaintext) is None


def test_signin_token_revoke_says_whether_it_revoked(bob):
    _, _, plaintext = signin(login="bob", password="pw-bob")

    assert signin_token_revoke(token=plaintext) is True
    assert signin_token_revoke(token=plaintext) is False
    assert signin_token_revoke(token="fnp_an-api-key") is False


def test_token_use_is_recorded_coarsely(bob, django_assert_num_queries):
    token, plaintext = signin_token_create(user=bob)

    bearer_authenticate(plaintext)
    with django_assert_num_queries(1):  # within the minute, cached: the generation only
        bearer_authenticate(plaintext)

    token.refresh_from_db()
    assert token.last_used_at is not None


# Users


def test_user_create_needs_the_add_permission(bob, staff_with):
    with pytest.raises(PermissionDenied, match="Only staff"):
        user_create(user=bob, name="N", email="n@example.com", password="pw-n-12345")
    with pytest.raises(PermissionDenied, match=r"auth\.add_user"):
        user_create(user=staff_with("stan"), name="N", email="n@example.com", password="pw-n-12345")


def test_user_create_runs_the_password_validators(alice, settings):
    settings.AUTH_PASSWORD_VALIDATORS = [
        {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"}
    ]

    with pytest.raises(ValidationError) as caught:
        user_create(user=alice, name="N", email="n@example.com", password="short", role="user")

    assert "password" in caught.value.message_dict


def test_user_role_of_each_kind_of_account(alice, bob):
    bob.is_active = False

    assert (user_role(alice), user_role(bob)) == ("admin", "pending")
