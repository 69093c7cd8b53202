"""Host-data shims (open_webui.models.users, utils.chat) from real plugin code."""

import pytest

from functions.services import runtime
from functions.services.context import CallContext
from functions.services.loader import load_source
from tests.support.inline import source_call

pytestmark = pytest.mark.django_db(transaction=True)

BOTH_STYLES = """
from open_webui.models.users import Users, UserModel
from apps.webui.models.users import Users as LegacyUsers

class Pipe:
    async def pipe(self, body, __user__):
        plain = Users.get_user_by_id(__user__["id"])
        awaited = await Users.get_user_by_id(__user__["id"])
        other = await Users.get_user_by_id(body["other"])
        count = Users.get_num_users()
        assert LegacyUsers is Users
        return f"{plain.email}|{awaited.email}|{other.email if other else None}|{count}"
"""

SYNC_STYLE = """
from open_webui.models.users import Users

class Pipe:
    def pipe(self, body, __user__):
        return Users.get_user_by_id(__user__["id"]).name
"""


def context_for(user) -> CallContext:
    role = "admin" if user.is_staff else "user"
    return CallContext(
        user={"id": str(user.pk), "email": user.email, "name": user.username, "role": role}
    )


async def answer(source: str, user, body: dict) -> str:
    call = source_call("shim", source)
    chunks = [c async for batch in runtime.run_pipe(call, body, context_for(user)) for c in batch]
    return "".join(c.text for c in chunks)


async def test_users_work_awaited_and_not_and_only_show_the_caller(bob, alice):
    text = await answer(BOTH_STYLES, bob, {"other": str(alice.pk)})
    assert text == "bob@example.com|bob@example.com|None|1"


async def test_admin_callers_see_other_users(bob, alice):
    text = await answer(BOTH_STYLES, alice, {"other": str(bob.pk)})
    assert text == "alice@example.com|alice@example.com|bob@example.com|2"


async def test_sync_plugins_call_users_plainly_from_their_thread(bob):
    assert await answer(SYNC_STYLE, bob, {}) == "bob"


def test_config_paths_live_in_the_data_dir(settings):
    with load_source(
        "from open_webui.config import UPLOAD_DIR, DATA_DIR\nclass Pipe:\n"
        "    def pipe(self, body):\n        return str(UPLOAD_DIR)\n"
    ) as loaded:
        assert loaded.module.UPLOAD_DIR.parent == loaded.module.DATA_DIR
        assert loaded.module.UPLOAD_DIR.is_dir()


# Host data while a module loads (import and __init__): read-only, for its saver


@pytest.fixture
def process_executor(tmp_path):
    from functions.workers.executor import ProcessExecutor
    from functions.workers.pool import Limits

    return ProcessExecutor(
        source_dir=str(tmp_path), limits=Limits(memory_mb=1024), timeout=20, first_chunk_timeout=20
    )


def save_roster(alice, plugin_source, settings, executor: str):
    from functions.services.functions import function_create

    settings.FUNCTIONS_EXECUTOR = executor
    return function_create(
        user=alice,
        id="roster",
        content=plugin_source("import_time_shims_pipe"),
        is_active=True,
    )


async def saved_answer(function, user, executor=None) -> str:
    from asgiref.sync import sync_to_async

    from functions.services.plugins import plugin_call_for

    call = await sync_to_async(plugin_call_for)(function=function, user=user)
    answer = runtime.run_pipe(call, {"messages": []}, context_for(user), executor=executor)
    chunks = [c async for batch in answer for c in batch]
    return "".join(c.text for c in chunks)


@pytest.mark.parametrize("executor", ["process", "inline"])
def test_shims_at_import_and_in_init_pass_the_save_time_check(
    executor, settings, alice, bob, plugin_source
):
    function = save_roster(alice, plugin_source, settings, executor)
    assert function.current_revision.load_result["kind"] == "pipe"


async def test_a_process_worker_loads_the_module_for_its_saver_and_hooks_for_the_caller(
    settings, alice, bob, plugin_source, process_executor
):
    from asgiref.sync import sync_to_async

    function = await sync_to_async(save_roster)(alice, plugin_source, settings, "process")
    try:
        # Loaded for alice (staff: everyone's records), read-only; bob's call sees bob only.
        text = await saved_answer(function, bob, process_executor)
    finally:
        await process_executor.stop()
    # At load, alice (staff) is an ordinary user: her own record, never everyone's.
    assert text == "fnplatform|alice@example.com|roster|alice@example.com|1"


async def test_an_inline_worker_loads_the_module_for_its_saver_too(
    settings, alice, bob, plugin_source
):
    from asgiref.sync import sync_to_async

    function = await sync_to_async(save_roster)(alice, plugin_source, settings, "inline")
    text = await saved_answer(function, bob)
    # At load, alice (staff) is an ordinary user: her own record, never everyone's.
    assert text == "fnplatform|alice@example.com|roster|alice@example.com|1"


def test_stored_code_loads_for_the_author_of_its_revision(settings, alice, bob, plugin_source):
    from functions.selectors import code_saver
    from functions.services.loader import source_sha256

    function = save_roster(alice, plugin_source, settings, "inline")
    sha = source_sha256(function.content)
    assert code_saver("roster", sha)["id"] == str(alice.pk)
    # Code no revision holds falls back to the function's creator; no function, nobody.
    assert code_saver("roster", "0" * 64)["email"] == "alice@example.com"
    assert code_saver("missing", sha) is None


@pytest.mark.parametrize("executor", ["process", "inline"])
def test_a_write_shim_at_import_is_refused_naming_the_method(
    executor, settings, alice, plugin_source
):
    from django.core.exceptions import ValidationError

    from functions.models import Function
    from functions.services.functions import function_create

    settings.FUNCTIONS_EXECUTOR = executor
    with pytest.raises(ValidationError) as info:
        function_create(user=alice, id="writer", content=plugin_source("import_time_write_pipe"))
    message = info.value.messages[0]
    assert "open_webui.models.users.Users.update_user_by_id is refused while" in message
    assert "read-only" in message
    assert not Function.objects.exists()
    alice.refresh_from_db()
    assert alice.get_full_name() != "Plugin Bot"


WRITES_IN_INIT = """
from open_webui.models.memories import Memories

class Filter:
    def __init__(self):
        Memories.insert_new_memory("1", "remember me")

    def inlet(self, body):
        return body
"""


def test_a_write_shim_in_init_is_refused_too(settings, alice):
    from django.core.exceptions import ValidationError

    from functions.services.functions import function_create

    settings.FUNCTIONS_EXECUTOR = "process"
    with pytest.raises(ValidationError, match=r"Memories\.insert_new_memory is refused while"):
        function_create(user=alice, id="memo", content=WRITES_IN_INIT)


def _connection(on_send):
    from functions.workers.connection import WorkerConnection

    connection = WorkerConnection()
    sent: list[dict] = []

    async def send(message):
        sent.append(message)
        if "load_token" in message:
            await on_send(connection, message)
        await connection.deliver({"op": "result", "id": message["id"], "value": None})

    connection.send = send
    return connection, sent


async def _served(name, args, kwargs):
    return "served"


def _ask(token: str) -> dict:
    return {"call": token, "name": "n", "args": [], "kwargs": {}}


async def _run(connection, request: dict) -> None:
    calls = connection.call(
        request,
        on_event=None,
        on_event_call=None,
        timeout=5,
        on_host=_served,
        on_load_host=_served,
    )
    async for _ in calls:
        pass


REQUEST = {"id": "c1", "function_id": "f", "sha256": "abc", "source": "x"}


async def test_a_load_token_is_given_back_once_the_module_is_loaded():
    async def while_loading(connection, message):
        load_token = message["load_token"]
        assert (await connection.answer_host(_ask(load_token)))["value"] == "served"
        assert (await connection.answer_host({"call": load_token, "release": True}))["ok"]
        assert "refused" in (await connection.answer_host(_ask(load_token)))["error"]
        # The call's own token is never given back that way.
        await connection.answer_host({"call": message["token"], "release": True})
        assert (await connection.answer_host(_ask(message["token"])))["ok"]

    connection, sent = _connection(while_loading)
    await _run(connection, REQUEST)
    # The code is loaded now: the next call of that version carries no load token.
    await _run(connection, {**REQUEST, "id": "c2"})
    assert "load_token" not in sent[1]


async def test_a_load_token_the_worker_keeps_dies_when_the_hook_shows_it_runs():
    kept: dict[str, str] = {}

    async def keeps_it(connection, message):
        kept["token"] = message["load_token"]
        await connection.answer_host(_ask(message["token"]))  # the hook asks as its caller
        kept["after_hook_asked"] = (await connection.answer_host(_ask(kept["token"])))["error"]

    connection, _ = _connection(keeps_it)
    await _run(connection, REQUEST)
    assert "refused" in kept["after_hook_asked"]


# The open_webui modules added for community code, used by plugins' hooks


def save_plugin(alice, name: str, executor: str, settings, plugin_source, **fields):
    from functions.services.functions import function_create

    settings.FUNCTIONS_EXECUTOR = executor
    return function_create(
        user=alice, id=name, content=plugin_source(name), is_active=True, **fields
    )


@pytest.mark.parametrize("executor", ["inline", "process"])
async def test_an_agent_pipe_builds_tool_specs_and_calls_a_tool(
    executor, settings, alice, bob, plugin_source, process_executor
):
    import json

    from asgiref.sync import sync_to_async

    function = await sync_to_async(save_plugin)(
        alice, "agent_tools_pipe", executor, settings, plugin_source
    )
    try:
        answer = json.loads(
            await saved_answer(function, bob, process_executor if executor == "process" else None)
        )
    finally:
        await process_executor.stop()
    assert answer["specs"] == [
        {
            "name": "add",
            "description": "Add two numbers.",
            "parameters": {
                "type": "object",
                "properties": {
                    "a": {"description": "the first number", "type": "integer"},
                    "b": {"description": "the second number", "type": "integer"},
                },
                "required": ["a", "b"],
            },
        }
    ]
    assert answer["result"] == "5 for bob"
    assert answer["chat_tools"] == []  # fnplatform has no toolkits yet
    assert answer["toolkit"] == "Calculator"
    assert answer["calculator"] == {"title": "Calculator", "version": "1.0"}
    assert answer["log_format"]


@pytest.mark.parametrize("executor", ["inline", "process"])
async def test_channel_messages_are_empty_posting_is_refused_and_only_own_code_reloads(
    executor, settings, alice, bob, plugin_source, process_executor
):
    from asgiref.sync import sync_to_async

    function = await sync_to_async(save_plugin)(
        alice, "channel_digest_pipe", executor, settings, plugin_source
    )
    await sync_to_async(save_plugin)(alice, "echo_pipe", executor, settings, plugin_source)
    try:
        text = await saved_answer(
            function, bob, process_executor if executor == "process" else None
        )
    finally:
        await process_executor.stop()
    recent, pinned, missing, posted, reloaded, other = text.split("|")
    assert (recent, pinned, missing) == ("0", "0", "None")
    assert "Messages.insert_new_message is not available: fnplatform has no channels" in posted
    assert reloaded == "Pipe:pipe:Channel Digest"
    assert "load_function_module_by_id('echo_pipe') is refused" in other
