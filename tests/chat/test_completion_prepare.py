"""Preparing a completion from the process caches: what a warm request costs, and that
every change is seen by the very next request.

These tests commit (transactional), so requests read the generation as the server
does: on the event loop, over fnplatform.state's own connection.
"""

import asyncio
import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from chat.services.catalog import catalog_for
from chat.services.completion import aprepare_completion
from chat.services.connections import connection_create, connection_update
from fnplatform import state
from fnplatform.accounts.models import ApiKey
from fnplatform.accounts.services import api_key_create, api_key_revoke, signin_token_create
from functions.models import Function, FunctionHealth, ModelSettings
from functions.services.functions import (
    function_create,
    function_set_active,
    function_set_global,
    function_update,
)
from tests.conftest import read_plugin
from tests.support.counting import cost
from valves.models import UserValves
from valves.services import valves_update_global, valves_update_user

pytestmark = pytest.mark.django_db(transaction=True)

ECHO = '''"""
title: Valves Echo
"""
from pydantic import BaseModel


class Pipe:
    class Valves(BaseModel):
        WORD: str = "default"

    class UserValves(BaseModel):
        mine: str = ""

    def __init__(self):
        self.valves = self.Valves()

    def pipe(self, body, __user__):
        said = body["messages"][-1]["content"]
        return f"{VERSION}{self.valves.WORD}|{__user__['valves'].mine}|{said}"
'''

FILTER = '''"""
title: Note Filter {n}
"""
from pydantic import BaseModel


class Filter:
    class UserValves(BaseModel):
        note: str = ""

    def inlet(self, body):
        return body

    def outlet(self, body):
        return body
'''


def echo(version: str = "") -> str:
    return ECHO.replace("{VERSION}", version)


def install(user, function_id: str, content: str, *, is_global: bool = False) -> Function:
    function = function_create(user=user, id=function_id, content=content)
    function = function_set_active(user=user, function=function, active=True)
    if is_global:
        function = function_set_global(user=user, function=function, is_global=True)
    return function


@pytest.fixture
def pipe(alice, bob):
    function = install(alice, "valves_echo", echo())
    valves_update_global(user=alice, function=function, values={"WORD": "one"})
    valves_update_user(user=bob, function=function, values={"mine": "b1"})
    return Function.objects.get(pk=function.pk)


def ask(token: str, model: str = "valves_echo") -> tuple[int, str]:
    """POST a completion as the token's user: (status, answer or error)."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    response = Client().post(
        "/api/chat/completions",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    data = response.json()
    if response.status_code != 200:
        return response.status_code, data.get("detail", "")
    return 200, data["choices"][0]["message"]["content"]


# What a warm request costs


@pytest.mark.parametrize("filters", [0, 5])
def test_a_warm_completion_runs_no_query_and_reads_the_generation_once(
    pipe, alice, bob, bob_key, filters
):
    for n in range(filters):
        function = install(alice, f"note_filter_{n}", FILTER.format(n=n), is_global=True)
        valves_update_user(user=bob, function=function, values={"note": f"n{n}"})
    assert ask(bob_key) == (200, "one|b1|hi")

    with cost() as spent:
        assert ask(bob_key) == (200, "one|b1|hi")

    assert spent.queries == []
    assert spent.reads == 1
    assert spent.hops == []


def test_a_warm_action_runs_no_query_and_no_thread_hop(alice, bob, bob_key):
    install(alice, "valves_echo", echo())
    install(alice, "ping", read_plugin("ping_action"), is_global=True)
    body = json.dumps({"model": "valves_echo", "messages": [], "id": "m1"})

    def act():
        return Client().post(
            "/api/chat/actions/ping",
            body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {bob_key}"},
        )

    assert act().status_code == 200
    with cost() as spent:
        assert act().status_code == 200

    assert (spent.queries, spent.reads, spent.hops) == ([], 1, [])


def test_a_warm_completion_of_an_upstream_model_runs_no_query(alice, bob_key, fake_openai):
    connection_create(user=alice, name="fake", base_url=fake_openai.url)
    assert ask(bob_key, "fake-small") == (200, "echo: hi")

    with cost() as spent:
        assert ask(bob_key, "fake-small") == (200, "echo: hi")

    assert (spent.queries, spent.reads) == ([], 1)
    assert spent.hops == []


@pytest.mark.parametrize("filters", [0, 5])
async def test_aprepare_completion_answers_on_the_loop_when_warm(alice, bob, filters):
    def setup():
        install(alice, "valves_echo", echo())
        for n in range(filters):
            function = install(alice, f"note_filter_{n}", FILTER.format(n=n), is_global=True)
            valves_update_user(user=bob, function=function, values={"note": f"n{n}"})

    await sync_to_async(setup)()
    body = {"model": "valves_echo", "messages": [{"role": "user", "content": "hi"}]}

    async def prepare():
        catalog = await catalog_for("valves_echo")
        return await aprepare_completion(user=bob, body=body, catalog=catalog)

    # Each on a task of its own, as each request is.
    with cost(queries=False) as cold:
        await asyncio.create_task(prepare())
    with cost(queries=False) as warm:
        req = await asyncio.create_task(prepare())

    assert len(cold.hops) == 2  # the model lookup, then everything else: once each
    assert (warm.hops, warm.reads) == ([], 1)
    assert req.target.pipe.function_id == "valves_echo"
    notes = {f.function_id: f.user_valves for f in req.filters}
    assert notes == {f"note_filter_{n}": {"note": f"n{n}"} for n in range(filters)}


# Every change is seen by the very next request


def test_users_get_only_their_own_user_valves(pipe, outsider, bob_key):
    _, eve_key = api_key_create(user=outsider)
    assert ask(bob_key) == (200, "one|b1|hi")
    assert ask(eve_key) == (200, "one||hi")

    valves_update_user(user=outsider, function=pipe, values={"mine": "e1"})

    assert ask(eve_key) == (200, "one|e1|hi")
    assert ask(bob_key) == (200, "one|b1|hi")


def test_edited_valves_and_user_valves(pipe, alice, bob, bob_key):
    assert ask(bob_key) == (200, "one|b1|hi")
    valves_update_global(user=alice, function=pipe, values={"WORD": "two"})
    assert ask(bob_key) == (200, "two|b1|hi")
    valves_update_user(user=bob, function=pipe, values={"mine": "b2"})
    assert ask(bob_key) == (200, "two|b2|hi")
    UserValves.objects.filter(user=bob).delete()  # a queryset delete: no signal
    assert ask(bob_key) == (200, "two||hi")


def test_a_deactivated_pipe(pipe, alice, bob_key):
    assert ask(bob_key)[0] == 200
    function_set_active(user=alice, function=pipe, active=False)
    assert ask(bob_key)[0] == 404


def test_a_new_revision(pipe, alice, bob_key):
    assert ask(bob_key) == (200, "one|b1|hi")
    function_update(user=alice, function=pipe, content=echo("v2:"))
    assert ask(bob_key) == (200, "v2:one|b1|hi")


def test_a_quarantine_and_its_release(pipe, bob_key):
    assert ask(bob_key)[0] == 200
    health = FunctionHealth.objects.create(
        function=pipe, quarantined_at=timezone.now(), quarantine_reason="crashed"
    )
    assert ask(bob_key)[0] == 503
    FunctionHealth.objects.filter(pk=health.pk).update(quarantined_at=None)
    assert ask(bob_key)[0] == 200


def test_a_new_global_filter(pipe, alice, bob_key):
    assert ask(bob_key) == (200, "one|b1|hi")
    install(alice, "upper_filter", read_plugin("upper_filter"), is_global=True)
    assert ask(bob_key) == (200, "one|b1|HI")


def test_a_filter_attached_to_the_model(pipe, alice, bob_key):
    upper = install(alice, "upper_filter", read_plugin("upper_filter"))
    assert ask(bob_key) == (200, "one|b1|hi")
    ModelSettings.objects.create(model_id="valves_echo").filters.add(upper)
    assert ask(bob_key) == (200, "one|b1|HI")


def test_a_revoked_key(pipe, bob, bob_key):
    assert ask(bob_key)[0] == 200
    api_key_revoke(user=bob, api_key=ApiKey.objects.get(user=bob))
    assert ask(bob_key)[0] == 401


def test_a_key_revoked_by_a_queryset_update(pipe, bob_key):
    assert ask(bob_key)[0] == 200
    ApiKey.objects.update(revoked_at=timezone.now())  # no signal, no service
    assert ask(bob_key)[0] == 401


def test_a_password_change_ends_the_sign_in_tokens(pipe, bob):
    _, token = signin_token_create(user=bob)
    assert ask(token)[0] == 200
    bob.set_password("a-new-password")
    bob.save()
    assert ask(token)[0] == 401


@pytest.mark.parametrize("change", ["deactivate", "delete"])
def test_a_deactivated_or_deleted_user(pipe, bob, bob_key, change):
    assert ask(bob_key)[0] == 200
    users = type(bob).objects.filter(pk=bob.pk)
    users.update(is_active=False) if change == "deactivate" else users.delete()
    assert ask(bob_key)[0] == 401


def test_an_expired_token_is_refused_on_a_cache_hit(pipe, bob, monkeypatch):
    _, token = signin_token_create(user=bob)
    assert ask(token)[0] == 200
    generation = state.read()
    later = timezone.now() + timedelta(seconds=bob_token_seconds() + 1)
    monkeypatch.setattr(timezone, "now", lambda: later)

    assert ask(token)[0] == 401
    assert state.read() == generation  # nothing changed: the cached token expired


def bob_token_seconds() -> int:
    from django.conf import settings

    return settings.SIGNIN_TOKEN_SECONDS


def test_model_access_by_user_and_by_group(pipe, alice, bob, bob_key):
    assert ask(bob_key)[0] == 200
    restricted = ModelSettings.objects.create(model_id="valves_echo")
    restricted.allowed_users.add(alice)
    assert ask(bob_key)[0] == 403
    readers = Group.objects.create(name="readers")
    restricted.allowed_groups.add(readers)
    assert ask(bob_key)[0] == 403
    bob.groups.add(readers)
    assert ask(bob_key)[0] == 200
    bob.groups.remove(readers)
    assert ask(bob_key)[0] == 403


def test_a_connection_switched_off(alice, bob_key, fake_openai):
    connection = connection_create(user=alice, name="fake", base_url=fake_openai.url)
    assert ask(bob_key, "fake-small") == (200, "echo: hi")
    connection_update(user=alice, connection=connection, is_active=False)
    assert ask(bob_key, "fake-small")[0] == 404
