"""fnplatform.state: the generation every change to a cached table moves, and the caches
it keeps valid, within a process and across processes sharing the database."""

import asyncio
import contextvars
import json
import os
import subprocess
import sys
import time

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.utils import timezone

from chat.services.connections import connection_create, connection_delete, connection_update
from fnplatform import state
from fnplatform.accounts.models import ApiKey
from fnplatform.accounts.services import _record_use, api_key_create, api_key_revoke
from functions.models import Function, FunctionHealth, ModelSettings
from functions.services.functions import function_set_active, function_update
from functions.services.health import health_record_failure
from tests.support.counting import cost
from tests.support.live import ROOT, LiveServer
from tests.support.live import test_database_url as database_url
from valves.models import FunctionValves
from valves.services import valves_update_global

ECHO = (
    '"""\ntitle: Word\n"""\nfrom pydantic import BaseModel\n\n\nclass Pipe:\n'
    "    class Valves(BaseModel):\n        WORD: str = 'default'\n\n"
    "    def __init__(self):\n        self.valves = self.Valves()\n\n"
    "    def pipe(self, body):\n        return self.valves.WORD\n"
)


def triggers() -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        else:
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        return {row[0] for row in cursor.fetchall() if row[0].startswith(state.TRIGGER_PREFIX)}


def watched_tables() -> set[str]:
    return {table for table, _, _ in state._watched_tables()}


# The generation


@pytest.mark.django_db
def test_every_watched_table_and_its_m2m_tables_have_triggers():
    ops = ["insert", "update", "delete"] + (["truncate"] if connection.vendor != "sqlite" else [])
    expected = {f"{state.TRIGGER_PREFIX}{t}_{op}"[:63] for t in watched_tables() for op in ops}

    assert expected <= triggers()
    assert {"functions_modelsettings_allowed_groups", "auth_user_groups"} <= watched_tables()


@pytest.mark.django_db
def test_install_restores_a_trigger_a_table_rebuild_dropped(bob):
    with connection.cursor() as cursor:
        on = "" if connection.vendor == "sqlite" else " ON accounts_apikey"
        cursor.execute(f"DROP TRIGGER {state.TRIGGER_PREFIX}accounts_apikey_insert{on}")
    before = state.read()

    state.install()
    state.install()  # twice: idempotent

    assert state.read() == before  # the row keeps its value
    api_key_create(user=bob)
    assert state.read() == before + 1


def _changes(alice, bob, make_function):
    """(what, change) for every kind of change the request path caches."""
    function = make_function("upper_filter", is_active=True)
    api_key, _ = api_key_create(user=bob)
    group = Group.objects.create(name="g")
    settings_row = ModelSettings.objects.create(model_id="m")
    allowed = Group.objects.create(name="allowed")
    settings_row.allowed_groups.add(allowed)
    return [
        ("key revoked", lambda: api_key_revoke(user=bob, api_key=api_key)),
        ("key revoked by update", lambda: ApiKey.objects.update(revoked_at=timezone.now())),
        ("function off", lambda: function_set_active(user=alice, function=function, active=False)),
        ("function deleted", lambda: Function.objects.filter(pk=function.pk).delete()),
        ("new revision", lambda: function_update(user=alice, function=function, content=ECHO)),
        ("valves", lambda: valves_update_global(user=alice, function=function, values={})),
        ("valves row", lambda: FunctionValves.objects.create(function=function)),
        ("model filter", lambda: settings_row.filters.add(function)),
        ("model user", lambda: settings_row.allowed_users.add(bob)),
        ("model group", lambda: settings_row.allowed_groups.add(group)),
        ("model defaults", lambda: ModelSettings.objects.update(default_filter_ids=["x"])),
        ("membership", lambda: bob.groups.add(group)),
        ("group deleted", lambda: allowed.delete()),
        ("password", lambda: (bob.set_password("new-pw"), bob.save())),
        ("user renamed", lambda: type(bob).objects.filter(pk=bob.pk).update(first_name="B")),
        ("user deleted", lambda: bob.delete()),
        ("quarantine", lambda: _quarantine(function)),
    ]


def _quarantine(function):
    FunctionHealth.objects.create(function=function, quarantined_at=timezone.now())


@pytest.mark.django_db
@pytest.mark.parametrize("index", range(17))
def test_each_change_moves_the_generation(alice, bob, make_function, index):
    what, change = _changes(alice, bob, make_function)[index]
    before = state.read()

    change()

    assert state.read() > before, what


@pytest.mark.django_db
def test_connections_move_the_generation(alice):
    before = state.read()
    made = connection_create(user=alice, name="up", base_url="http://127.0.0.1:9/v1")
    connection_update(user=alice, connection=made, is_active=False)
    connection_delete(user=alice, connection=made)
    assert state.read() >= before + 3


@pytest.mark.django_db
def test_what_nobody_caches_moves_nothing(bob, make_function):
    api_key, _ = api_key_create(user=bob)
    function = make_function("upper_filter")
    before = state.read()

    _record_use(api_key)  # last_used_at, once a minute
    health_record_failure(function_id=function.id, kind="error", message="boom")
    health_record_failure(function_id=function.id, kind="error", message="again")

    assert state.read() == before
    assert ApiKey.objects.get().last_used_at is not None


# The caches


@pytest.mark.django_db
def test_a_cached_value_is_loaded_once_per_generation(bob):
    loads = []

    def load():
        loads.append(1)
        return len(loads)

    assert state.cached("test", "k", load) == 1
    assert state.cached("test", "k", load) == 1
    api_key_create(user=bob)  # any watched change
    assert state.cached("test", "k", load) == 2


@pytest.mark.django_db(transaction=True)
def test_what_a_transaction_loads_is_not_kept_a_rollback_would_leave_it(bob):
    from django.db import transaction

    class RolledBack(Exception):
        pass

    with pytest.raises(RolledBack), transaction.atomic():
        api_key_create(user=bob)  # its own, uncommitted, generation
        assert state.cached("test", "k", lambda: "seen inside") == "seen inside"
        raise RolledBack
    api_key_create(user=bob)  # another change commits: the same number again

    assert state.cached("test", "k", lambda: "fresh") == "fresh"


def test_an_older_generation_neither_reads_nor_writes_a_newer_one(monkeypatch):
    cache = state._Cache()
    cache.put(5, "s", "k", "five")
    cache.put(4, "s", "k", "four")  # a slow request of before: dropped

    assert cache.get(5, "s", "k") == "five"
    assert cache.get(4, "s", "k") is state._ABSENT
    cache.put(6, "s", "other", "six")  # a newer generation empties the rest
    assert cache.get(6, "s", "k") is state._ABSENT


def test_a_space_is_bounded(monkeypatch):
    monkeypatch.setattr(state, "MAX_ENTRIES", 3)
    cache = state._Cache()
    for key in range(4):
        cache.put(1, "s", key, key)
    assert cache.get(1, "s", 3) == 3
    assert cache.get(1, "s", 0) is state._ABSENT


@pytest.mark.django_db(transaction=True)
async def test_on_the_loop_a_miss_is_loaded_once_in_a_thread():
    loads = []

    def lookup():
        return state.cached("test", "k", lambda: loads.append(1) or "loaded")

    with cost(queries=False) as cold:
        assert await asyncio.create_task(state.answer(lookup)) == "loaded"
    with cost(queries=False) as warm:
        assert await asyncio.create_task(state.answer(lookup)) == "loaded"

    assert (len(cold.hops), cold.reads) == (1, 1)
    assert (warm.hops, warm.reads) == ([], 1)
    assert loads == [1]
    with pytest.raises(state.Miss):  # on the loop, nothing is ever loaded
        state.cached("test", "other", lambda: "never")


@pytest.mark.django_db(transaction=True)
async def test_a_request_reads_the_generation_once_and_no_later_request_reuses_it():
    async def request():
        first = await state.acurrent()
        in_thread = await sync_to_async(state.current)()
        return first, in_thread, contextvars.copy_context()

    with cost(queries=False) as spent:
        first, in_thread, leftover = await asyncio.create_task(request())
    assert first == in_thread == await sync_to_async(state.read)()
    assert spent.reads == 1  # the thread it handed work to used the request's

    # A context copied out of the finished request holds a dead memo.
    assert leftover.run(state._memoised) is None


@pytest.mark.django_db(transaction=True)
async def test_a_task_serving_many_requests_reads_anew_after_end_request(bob):
    first = await state.acurrent()
    await sync_to_async(api_key_create)(user=bob)
    assert await state.acurrent() == first  # one request: one generation
    state.end_request()
    assert await state.acurrent() == first + 1


# Across processes


def in_another_process(code: str) -> None:
    """Run Django code in a second OS process, on the test database."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "FNPLATFORM_DATA_DIR": str(settings.DATA_DIR),
        "SECRET_KEY": settings.SECRET_KEY,
        "FNPLATFORM_SECRETS_KEY": settings.FNPLATFORM_SECRETS_KEY,
    }
    command = [sys.executable, "manage.py", "shell", "-c", code]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def ask(token: str, model: str = "word") -> tuple[int, str]:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    response = Client().post(
        "/api/chat/completions",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    data = response.json()
    ok = response.status_code == 200
    return response.status_code, data["choices"][0]["message"]["content"] if ok else ""


@pytest.fixture
def word_pipe(alice):
    from functions.services.functions import function_create

    function = function_create(user=alice, id="word", content=ECHO)
    function = function_set_active(user=alice, function=function, active=True)
    valves_update_global(user=alice, function=function, values={"WORD": "one"})
    return function


@pytest.mark.django_db(transaction=True)
def test_changes_another_process_commits_are_seen_by_the_next_request(word_pipe, bob, bob_key):
    assert ask(bob_key) == (200, "one")
    assert ask(bob_key) == (200, "one")  # cached now

    in_another_process(
        "from valves.models import FunctionValves; "
        "FunctionValves.objects.filter(function_id='word').update(data={'WORD': 'two'})"
    )
    assert ask(bob_key) == (200, "two")

    in_another_process(
        "from django.contrib.auth import get_user_model; "
        "from functions.models import Function; "
        "from functions.services.functions import function_set_active; "
        "alice = get_user_model().objects.get(username='alice'); "
        "function_set_active(user=alice, function=Function.objects.get(pk='word'), active=False)"
    )
    assert ask(bob_key)[0] == 404

    in_another_process(
        "from fnplatform.accounts.models import ApiKey; "
        "from fnplatform.accounts.services import api_key_revoke; "
        "key = ApiKey.objects.get(user__username='bob'); api_key_revoke(user=key.user, api_key=key)"
    )
    assert ask(bob_key)[0] == 401


@pytest.mark.django_db(transaction=True)
def test_a_live_server_sees_the_test_process_changes_on_its_next_request(
    live, word_pipe, alice, bob, bob_key
):
    def ask_live() -> tuple[int, str]:
        response = httpx.post(
            f"{live.url}/api/chat/completions",
            json={"model": "word", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {bob_key}"},
            timeout=30,
        )
        ok = response.status_code == 200
        return response.status_code, response.json()["choices"][0]["message"][
            "content"
        ] if ok else ""

    assert ask_live() == (200, "one")
    assert ask_live() == (200, "one")
    valves_update_global(user=alice, function=word_pipe, values={"WORD": "two"})
    assert ask_live() == (200, "two")
    function_set_active(user=alice, function=word_pipe, active=False)
    assert ask_live()[0] == 404
    ApiKey.objects.update(revoked_at=timezone.now())
    assert ask_live()[0] == 401


# Connections


def test_django_connections_are_not_kept_under_asgi_by_default():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        "db = settings.DATABASES['default']; "
        "print(json.dumps([db['CONN_MAX_AGE'], db['CONN_HEALTH_CHECKS']]))"
    )
    for url in ("", "postgres://u@127.0.0.1:5432/x"):
        run_env = {**env, "DJANGO_SETTINGS_MODULE": "fnplatform.settings"}
        if url:
            run_env["DATABASE_URL"] = url
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=run_env, capture_output=True, text=True
        )
        assert json.loads(done.stdout.splitlines()[-1]) == [0, True], done.stderr


@pytest.mark.django_db(transaction=True)
async def test_the_generation_is_read_over_one_kept_connection():
    async def request():
        return await state.acurrent()

    first = await asyncio.create_task(request())
    reader = state._sqlite._conn if connection.vendor == "sqlite" else None
    for _ in range(3):
        assert await asyncio.create_task(request()) == first
    if reader is not None:
        assert state._sqlite._conn is reader


def _backends(name: str, *, settle: int | None = None) -> set[int]:
    """The server's backends; with `settle`, once that many remain (a request closes
    its own connection just after its response went out)."""
    for _ in range(50):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [name])
            pids = {row[0] for row in cursor.fetchall()}
        if settle is None or len(pids) == settle:
            break
        time.sleep(0.1)
    return pids


def _terminate(pids: set[int]) -> None:
    with connection.cursor() as cursor:
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.mark.django_db(transaction=True)
def test_a_postgres_server_keeps_one_connection_and_replaces_it_when_dropped(word_pipe, bob_key):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL: its backends are visible in pg_stat_activity")
    name = f"fnplatform-test-{os.getpid()}"
    server = LiveServer({"DATABASE_URL": f"{database_url()}?application_name={name}"})

    def complete() -> int:
        body = {"model": "word", "messages": [{"role": "user", "content": "hi"}]}
        headers = {"Authorization": f"Bearer {bob_key}"}
        url = f"{server.url}/api/chat/completions"
        return httpx.post(url, json=body, headers=headers, timeout=30).status_code

    try:
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
        assert _backends(name, settle=0) == set()  # the request's own went with it
        assert complete() == 200
        kept = _backends(name, settle=1)
        assert len(kept) == 1  # the generation's, on the event loop
        assert [complete() for _ in range(3)] == [200] * 3
        assert _backends(name, settle=1) == kept
        _terminate(kept)
        assert complete() == 200  # replaced, without a failed request
        replaced = _backends(name, settle=1)
        assert len(replaced) == 1 and replaced != kept
    finally:
        server.stop()
