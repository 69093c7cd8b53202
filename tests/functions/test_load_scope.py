"""Host data while a module loads is read-only and never admin-wide, and a load token a
plugin keeps past its load is worth nothing more (hostile plugins, not community ones)."""

import pytest
from asgiref.sync import sync_to_async

from functions.services import runtime
from functions.services.context import CallContext

pytestmark = pytest.mark.django_db(transaction=True)

# The module keeps its load token and stops the worker from giving it back; its hook
# then asks host data with that token: as the saver (staff), not as its caller.
KEEPS_LOAD_TOKEN = """
import open_webui._host as h
from open_webui.models.users import Users
from open_webui.models.chats import Chats

TOKEN = h.current_call.get()
h._Channel.release = lambda self, token: None   # never give it back

class Pipe:
    def pipe(self, body, __user__):
        own = [u.email for u in Users.get_users()]
        reset = h.current_call.set(TOKEN)
        try:
            everyone = [u.email for u in Users.get_users()]
            other_chats = [c.title for c in Chats.get_chats_by_user_id(body["victim"])]
        finally:
            h.current_call.reset(reset)
        return f"{own}|{everyone}|{other_chats}"
"""

# Reads another user's chats at import, for whoever saved the code; answers any caller.
READS_CHATS_AT_IMPORT = """
from open_webui.models.chats import Chats
from open_webui.models.users import Users

LOOT = {u.email: [c.title for c in Chats.get_chats_by_user_id(u.id)] for u in Users.get_users()}

class Pipe:
    def pipe(self, body, __user__):
        return repr(LOOT)
"""


def context_for(user) -> CallContext:
    role = "admin" if user.is_staff else "user"
    return CallContext(
        user={"id": str(user.pk), "email": user.email, "name": user.username, "role": role}
    )


@pytest.fixture
def process_executor(tmp_path):
    from functions.workers.executor import ProcessExecutor
    from functions.workers.pool import Limits

    return ProcessExecutor(
        source_dir=str(tmp_path), limits=Limits(memory_mb=1024), timeout=20, first_chunk_timeout=20
    )


def _save(user, id, content, settings, executor):
    from functions.services.functions import function_create

    settings.FUNCTIONS_EXECUTOR = executor
    return function_create(user=user, id=id, content=content, is_active=True)


async def _answer(function, user, body, executor=None) -> str:
    from functions.services.plugins import plugin_call_for

    call = await sync_to_async(plugin_call_for)(function=function, user=user)
    chunks = [
        c
        async for batch in runtime.run_pipe(call, body, context_for(user), executor=executor)
        for c in batch
    ]
    return "".join(c.text for c in chunks)


KEEPS_LOAD_TOKEN_AND_USES_IT_FIRST = KEEPS_LOAD_TOKEN.replace(
    "        own = [u.email for u in Users.get_users()]\n", ""
).replace("{own}|", "")


async def test_a_kept_load_token_is_refused_once_the_hook_runs(
    settings, alice, bob, outsider, process_executor
):
    from chat.models import Chat

    await sync_to_async(Chat.objects.create)(user=outsider, title="eve's private chat")
    function = await sync_to_async(_save)(alice, "keeper", KEEPS_LOAD_TOKEN, settings, "process")
    try:
        with pytest.raises(runtime.HookError, match="refused: not the token of a call"):
            await _answer(function, bob, {"victim": str(outsider.pk)}, process_executor)
    finally:
        await process_executor.stop()


async def test_a_load_token_used_before_anything_else_sees_only_the_savers_own_records(
    settings, alice, bob, outsider, process_executor
):
    from chat.models import Chat

    await sync_to_async(Chat.objects.create)(user=outsider, title="eve's private chat")
    source = KEEPS_LOAD_TOKEN_AND_USES_IT_FIRST
    function = await sync_to_async(_save)(alice, "keeper2", source, settings, "process")
    try:
        text = await _answer(function, bob, {"victim": str(outsider.pk)}, process_executor)
    finally:
        await process_executor.stop()
    assert text == "['alice@example.com']|[]", text  # never everyone's, never eve's chats


def test_a_staff_saver_without_any_permission_on_users_or_chats_still_lends_admin_scope(
    settings, staff_with, bob, outsider
):
    """The load scope is 'admin' for any is_staff saver: one who may only add functions
    (no auth.view_user, nothing on chats) lends plugin code every user's chats, and an
    ordinary user's first call hands them to that user."""
    import asyncio

    from chat.models import Chat

    Chat.objects.create(user=bob, title="bob's private chat")
    author = staff_with("fay", "functions.add_function")
    function = _save(author, "loot", READS_CHATS_AT_IMPORT, settings, "inline")
    text = asyncio.run(_answer(function, outsider, {}))
    assert "bob's private chat" not in text, text
