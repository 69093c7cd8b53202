import asyncio

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


# On the event loop (async operations): answered from the credential cache


@pytest.mark.django_db(transaction=True)
async def test_on_the_loop_a_warm_key_costs_no_thread_hop(bob):
    from asgiref.sync import sync_to_async

    from tests.support.counting import cost

    _, key = await sync_to_async(api_key_create)(user=bob)

    async def authenticate():
        request = RequestFactory().get("/", headers={"Authorization": f"Bearer {key}"})
        return await ApiKeyAuth()(request), request

    with cost(queries=False) as cold:
        user, _ = await asyncio.create_task(authenticate())  # each request on its own task
    with cost(queries=False) as warm:
        again, request = await asyncio.create_task(authenticate())

    assert user == again == bob
    assert request.credential.key_hash and request.bearer_token == key
    assert len(cold.hops) == 2  # the lookup, and stamping its first use
    assert (warm.hops, warm.reads) == ([], 1)


@pytest.mark.django_db(transaction=True)
async def test_on_the_loop_a_revoked_key_is_refused_at_once(bob):
    from asgiref.sync import sync_to_async

    api_key, key = await sync_to_async(api_key_create)(user=bob)

    async def authenticate():
        request = RequestFactory().get("/", headers={"Authorization": f"Bearer {key}"})
        return await ApiKeyAuth()(request)

    assert await asyncio.create_task(authenticate()) == bob
    await sync_to_async(api_key_revoke)(user=bob, api_key=api_key)
    assert await asyncio.create_task(authenticate()) is None


def test_each_use_gets_its_own_user_instance(bob):
    _, key = api_key_create(user=bob)

    first, second = call_auth(f"Bearer {key}"), call_auth(f"Bearer {key}")

    assert first == second == bob
    assert first is not second  # a request's changes to its user stay its own
