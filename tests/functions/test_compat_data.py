"""Host-data shims (Chats, Files + Storage, Memories, Models, Tools, Functions, Config)
exercised from real plugin code, awaited and not, and scoped to the calling user."""

import asyncio
import importlib
import json

import pytest

from chat.models import Chat, File, Memory
from functions.models import ModelSettings
from functions.services import runtime
from functions.services.context import CallContext
from functions.services.loader import load_source
from tests.support.inline import source_call

pytestmark = pytest.mark.django_db(transaction=True)


def context_for(user) -> CallContext:
    role = "admin" if user.is_staff else "user"
    return CallContext(user={"id": str(user.pk), "email": user.email, "role": role})


async def _answer(source: str, user, body: dict) -> str:
    call = source_call("shim", source)
    chunks = [c async for batch in runtime.run_pipe(call, body, context_for(user)) for c in batch]
    return "".join(c.text for c in chunks)


async def _answer_call(call, user) -> dict:
    chunks = [c async for batch in runtime.run_pipe(call, {}, context_for(user)) for c in batch]
    return json.loads("".join(c.text for c in chunks))


def run(source: str, user, body: dict | None = None) -> dict:
    """Run a plugin's pipe for `user` (setup stays sync, in the test) and decode its JSON."""
    return json.loads(asyncio.run(_answer(source, user, body or {})))


@pytest.fixture
def uploads(tmp_path, monkeypatch):
    """Point the UPLOAD_DIR that plugin code sees at a temporary folder."""
    config = importlib.import_module("open_webui.config")
    folder = tmp_path / "uploads"
    folder.mkdir()
    monkeypatch.setattr(config, "UPLOAD_DIR", folder)
    return folder


# Chats.

CHATS_ASYNC = """
import json
from open_webui.models.chats import Chats, ChatForm

class Pipe:
    async def pipe(self, body, __user__):
        uid = __user__["id"]
        chat = await Chats.insert_new_chat(uid, ChatForm(chat={"title": "Trip", "models": ["m"]}))
        await Chats.upsert_message_to_chat_by_id_and_message_id(
            chat.id, "m1", {"id": "m1", "role": "user", "content": "hi\\x00"}
        )
        Chats.upsert_message_to_chat_by_id_and_message_id(chat.id, "m1", {"done": True})
        files = await Chats.add_message_files_by_id_and_message_id(
            chat.id, "m1", [{"type": "image", "url": "a.png"}]
        )
        message = Chats.get_message_by_id_and_message_id(chat.id, "m1")
        messages = await Chats.get_messages_map_by_chat_id(chat.id)
        document = Chats.get_chat_by_id(chat.id).chat
        document["title"] = "Renamed"
        updated = await Chats.update_chat_by_id(chat.id, document)
        mine = Chats.get_chats_by_user_id(uid)
        same = await Chats.get_chat_by_id_and_user_id(chat.id, uid)
        return json.dumps({
            "id": chat.id, "user_id": chat.user_id, "created": isinstance(chat.created_at, int),
            "files": files, "message": message, "ids": list(messages),
            "current": document["history"]["currentId"], "title": updated.title,
            "mine": [c.id for c in mine], "same": same.title,
        })
"""

CHATS_SYNC = """
import json
from open_webui.models.chats import Chats, ChatForm

class Pipe:
    def pipe(self, body, __user__):
        chat = Chats.insert_new_chat(__user__["id"], ChatForm(chat={"title": "Plain"}))
        Chats.upsert_message_to_chat_by_id_and_message_id(chat.id, "a", {"content": "x"})
        Chats.add_message_files_by_id_and_message_id(chat.id, "a", [{"type": "file", "id": "f"}])
        return json.dumps({
            "title": Chats.get_chat_by_id(chat.id).title,
            "message": Chats.get_message_by_id_and_message_id(chat.id, "a"),
        })
"""

CHATS_OF_OTHERS = """
import json
from open_webui.models.chats import Chats, ChatForm

class Pipe:
    async def pipe(self, body, __user__):
        other, owner = body["other"], body["owner"]
        found = Chats.get_chat_by_id(other)
        return json.dumps({
            "get": found.title if found else None,
            "get_user": await Chats.get_chat_by_id_and_user_id(other, owner) is not None,
            "list": len(Chats.get_chats_by_user_id(owner)),
            "messages": await Chats.get_messages_map_by_chat_id(other),
            "upsert": Chats.upsert_message_to_chat_by_id_and_message_id(
                other, "m1", {"content": "changed"}
            ) is not None,
            "update": await Chats.update_chat_by_id(other, {"title": "changed"}) is not None,
            "files": Chats.add_message_files_by_id_and_message_id(other, "m1", [{"id": "x"}]),
            "insert_for": Chats.insert_new_chat(owner, ChatForm(chat={})) is not None,
        })
"""

CHAT_FILES = """
import json
from open_webui.models.chats import Chats, ChatForm
from open_webui.models.files import Files, FileForm

class Pipe:
    async def pipe(self, body, __user__):
        uid = __user__["id"]
        chat = Chats.insert_new_chat(uid, ChatForm(chat={"title": "With files"}))
        Files.insert_new_file(uid, FileForm(id="f-own", filename="own.txt", path=""))
        rows = await Chats.insert_chat_files(
            chat_id=chat.id, message_id="m1",
            file_ids=["f-own", body["foreign"], "f-own"], user_id=uid,
        )
        again = Chats.insert_chat_files(chat.id, "m1", ["f-own"], uid)
        linked = await Chats.get_chat_files_by_chat_id_and_message_id(chat.id, "m1")
        return json.dumps({
            "rows": [r.file_id for r in rows], "again": again,
            "linked": [r.file_id for r in linked],
            "document": Chats.get_chat_by_id(chat.id).chat["files"],
        })
"""


def test_chats_round_trip_awaited_and_not(bob):
    out = run(CHATS_ASYNC, bob)
    assert out["user_id"] == str(bob.pk) and out["created"]
    assert out["files"] == [{"type": "image", "url": "a.png"}]
    assert out["message"] == {
        "id": "m1",
        "role": "user",
        "content": "hi",  # NUL stripped, as upstream does
        "done": True,
        "files": [{"type": "image", "url": "a.png"}],
    }
    assert out["ids"] == ["m1"] and out["current"] == "m1"
    assert out["title"] == out["same"] == "Renamed"
    assert out["mine"] == [out["id"]]
    row = Chat.objects.get(pk=out["id"])
    assert row.user == bob and row.title == "Renamed"
    assert row.chat["history"]["messages"]["m1"]["done"] is True


def test_chats_from_a_sync_pipe(bob):
    out = run(CHATS_SYNC, bob)
    assert out == {
        "title": "Plain",
        "message": {"content": "x", "files": [{"type": "file", "id": "f"}]},
    }


def test_a_users_plugin_cannot_read_or_change_another_users_chat(bob, alice):
    theirs = Chat.objects.create(user=alice, title="Secret", chat={"title": "Secret"})
    out = run(CHATS_OF_OTHERS, bob, {"other": theirs.id, "owner": str(alice.pk)})
    assert out == {
        "get": None,
        "get_user": False,
        "list": 0,
        "messages": None,
        "upsert": False,
        "update": False,
        "files": None,
        "insert_for": False,
    }
    theirs.refresh_from_db()
    assert theirs.title == "Secret" and theirs.chat == {"title": "Secret"}
    assert Chat.objects.filter(user=alice).count() == 1


def test_an_admin_call_reaches_other_users_chats(bob, alice):
    theirs = Chat.objects.create(user=bob, title="Bob's", chat={"title": "Bob's"})
    out = run(CHATS_OF_OTHERS, alice, {"other": theirs.id, "owner": str(bob.pk)})
    assert out["get"] == "Bob's" and out["get_user"] and out["list"] == 1
    assert out["upsert"] and out["update"] and out["insert_for"]
    assert Chat.objects.get(pk=theirs.pk).title == "changed"


def test_insert_chat_files_links_only_reachable_files_in_the_chat_document(bob, alice):
    File.objects.create(id="f-alice", user=alice, filename="private.txt")
    out = run(CHAT_FILES, bob, {"foreign": "f-alice"})
    assert out["rows"] == ["f-own"] and out["again"] is None
    assert out["linked"] == ["f-own"]
    [entry] = out["document"]
    assert entry["type"] == "file" and entry["id"] == "f-own" and entry["message_id"] == "m1"
    assert entry["name"] == "own.txt"


# Files and Storage.

FILES_ASYNC = """
import io, json, uuid
from open_webui.models.files import Files, FileForm
from open_webui.storage.provider import Storage

class Pipe:
    async def pipe(self, body, __user__):
        uid = __user__["id"]
        file_id = str(uuid.uuid4())
        contents, path = Storage.upload_file(
            io.BytesIO(b"hello"), f"{file_id}_note.txt", {"OpenWebUI-User-Id": uid}
        )
        meta = {"name": "note.txt", "content_type": "text/plain", "size": len(contents)}
        item = await Files.insert_new_file(
            uid, FileForm(id=file_id, filename="note.txt", path=path, meta=meta)
        )
        with open(Storage.get_file(item.path), "rb") as handle:
            read_back = handle.read().decode()
        Files.update_file_data_by_id(file_id, {"content": read_back})
        await Files.update_file_metadata_by_id(file_id, {"tag": "x"})
        metadata = Files.get_file_metadata_by_id(file_id)
        fetched = await Files.get_file_by_id(file_id)
        return json.dumps({
            "id": file_id, "path": path, "same_path": item.path == path,
            "read": read_back, "data": fetched.data, "meta": metadata.meta,
            "mine": [f.id for f in await Files.get_files_by_user_id(uid)],
            "all": [f.id for f in Files.get_files()],
            "by_ids": [f.id for f in Files.get_files_by_ids([file_id, "nope"])],
        })
"""

FILES_SYNC_DELETE = """
import io, json
from apps.webui.models.files import Files, FileForm
from open_webui.storage.provider import Storage

class Pipe:
    def pipe(self, body, __user__):
        _, path = Storage.upload_file(io.BytesIO(b"bye"), "gone.txt", {})
        Files.insert_new_file(__user__["id"], FileForm(id="f-gone", filename="g", path=path))
        deleted = Files.delete_file_by_id("f-gone")
        Storage.delete_file(path)
        return json.dumps({"deleted": deleted, "after": Files.get_file_by_id("f-gone")})
"""

FILES_OF_OTHERS = """
import io, json
from open_webui.models.files import Files, FileForm
from open_webui.storage.provider import Storage

def refused(call):
    try:
        call()
    except (PermissionError, ValueError) as exc:
        return type(exc).__name__
    return "allowed"

class Pipe:
    async def pipe(self, body, __user__):
        other, owner = body["other"], body["owner"]
        found = await Files.get_file_by_id(other)
        return json.dumps({
            "get": found.filename if found else None,
            "meta": Files.get_file_metadata_by_id(other) is not None,
            "list": len(Files.get_files_by_user_id(owner)),
            "all": len(await Files.get_files()),
            "data": Files.update_file_data_by_id(other, {"content": "changed"}) is not None,
            "insert_for": Files.insert_new_file(
                owner, FileForm(id="planted", filename="p", path="")
            ) is not None,
            "read": refused(lambda: Storage.get_file(body["path"])),
            "overwrite": refused(
                lambda: Storage.upload_file(io.BytesIO(b"x"), body["name"], {})
            ),
            "escape": refused(lambda: Storage.get_file("../../etc/passwd")),
            "delete": await Files.delete_file_by_id(other),
        })
"""


def test_files_written_through_storage_into_the_upload_dir(bob, uploads):
    out = run(FILES_ASYNC, bob)
    stored = uploads / f"{out['id']}_note.txt"
    assert out["path"] == str(stored) and stored.read_bytes() == b"hello"
    assert out["same_path"] and out["read"] == "hello"
    assert out["data"] == {"content": "hello"}
    assert out["meta"] == {"name": "note.txt", "content_type": "text/plain", "size": 5, "tag": "x"}
    assert out["mine"] == out["all"] == out["by_ids"] == [out["id"]]
    row = File.objects.get(pk=out["id"])
    assert row.user == bob and row.path == stored.name  # stored relative to UPLOAD_DIR


def test_files_from_a_sync_pipe_with_the_legacy_import_path(bob, uploads):
    out = run(FILES_SYNC_DELETE, bob)
    assert out == {"deleted": True, "after": None}
    assert not (uploads / "gone.txt").exists()


def test_a_users_plugin_cannot_reach_another_users_file(bob, alice, uploads):
    (uploads / "alice.txt").write_bytes(b"private")
    File.objects.create(id="f-alice", user=alice, filename="alice.txt", path="alice.txt")
    body = {"other": "f-alice", "owner": str(alice.pk), "path": "alice.txt", "name": "alice.txt"}
    out = run(FILES_OF_OTHERS, bob, body)
    assert out == {
        "get": None,
        "meta": False,
        "list": 0,
        "all": 0,
        "data": False,
        "insert_for": False,
        "read": "PermissionError",
        "overwrite": "PermissionError",
        "escape": "ValueError",
        "delete": False,
    }
    assert (uploads / "alice.txt").read_bytes() == b"private"
    assert File.objects.get(pk="f-alice").data == {}
    assert not File.objects.filter(pk="planted").exists()


def test_an_admin_call_reaches_other_users_files(bob, alice, uploads):
    (uploads / "bob.txt").write_bytes(b"bob's")
    File.objects.create(id="f-bob", user=bob, filename="bob.txt", path="bob.txt")
    body = {"other": "f-bob", "owner": str(bob.pk), "path": "bob.txt", "name": "bob.txt"}
    out = run(FILES_OF_OTHERS, alice, body)
    assert out["get"] == "bob.txt" and out["meta"] and out["list"] == 1 and out["data"]
    assert out["read"] == out["overwrite"] == "allowed" and out["escape"] == "ValueError"
    assert out["delete"] is True


def test_a_file_record_cannot_point_outside_the_upload_dir(bob, uploads):
    source = (
        "from open_webui.models.files import Files, FileForm\nclass Pipe:\n"
        "    def pipe(self, body, __user__):\n"
        "        try:\n"
        "            Files.insert_new_file(__user__['id'], FileForm(\n"
        "                id='x', filename='passwd', path='/etc/passwd'))\n"
        "        except ValueError as exc:\n"
        "            return '\"refused\"'\n"
        "        return '\"stored\"'\n"
    )
    assert run(source, bob) == "refused"
    assert not File.objects.exists()


# Memories.

MEMORIES_SYNC = """
import json
from open_webui.apps.webui.models.memories import Memories

class Pipe:
    def pipe(self, body, __user__):
        uid = __user__["id"]
        first = Memories.insert_new_memory(uid, "likes tea")
        Memories.update_memory_by_id(first.id, "likes green tea")
        Memories.insert_new_memory(uid, "lives in Oslo")
        listed = sorted(m.content for m in Memories.get_memories_by_user_id(uid))
        one = Memories.get_memory_by_id(first.id)
        deleted = Memories.delete_memory_by_id(first.id)
        left = [m.content for m in Memories.get_memories_by_user_id(uid)]
        return json.dumps({
            "user_id": first.user_id, "listed": listed, "one": one.content,
            "deleted": deleted, "left": left,
            "cleared": Memories.delete_memories_by_user_id(uid),
            "after": Memories.get_memories(),
        })
"""

MEMORIES_ASYNC = """
import json
from open_webui.models.memories import Memories
from open_webui.models.users import Users
from open_webui.apps.webui.routers.memories import add_memory, AddMemoryForm

class Pipe:
    async def pipe(self, body, __user__, __request__=None):
        user = await Users.get_user_by_id(__user__["id"])
        added = await add_memory(__request__, AddMemoryForm(content="prefers metric"), user)
        updated = await Memories.update_memory_by_id_and_user_id(added.id, user.id, "uses SI")
        mine = await Memories.get_memories_by_user_id(user.id)
        deleted = await Memories.delete_memory_by_id_and_user_id(added.id, user.id)
        return json.dumps({
            "added": added.content, "updated": updated.content,
            "mine": [m.content for m in mine], "deleted": deleted,
        })
"""

MEMORIES_OF_OTHERS = """
import json
from open_webui.models.memories import Memories
from open_webui.routers.memories import add_memory

class Pipe:
    async def pipe(self, body, __user__):
        other, owner = body["other"], body["owner"]
        found = Memories.get_memory_by_id(other)
        return json.dumps({
            "get": found.content if found else None,
            "list": len(await Memories.get_memories_by_user_id(owner)),
            "update": Memories.update_memory_by_id(other, "changed") is not None,
            "update_user": await Memories.update_memory_by_id_and_user_id(
                other, owner, "changed"
            ) is not None,
            "insert_for": Memories.insert_new_memory(owner, "planted") is not None,
            "add_for": await add_memory(None, {"content": "planted"}, {"id": owner}) is not None,
            "delete": Memories.delete_memory_by_id(other),
            "delete_user": await Memories.delete_memory_by_id_and_user_id(other, owner),
            "clear": Memories.delete_memories_by_user_id(owner),
        })
"""


def test_memories_round_trip_from_a_sync_pipe(bob):
    out = run(MEMORIES_SYNC, bob)
    assert out == {
        "user_id": str(bob.pk),
        "listed": ["likes green tea", "lives in Oslo"],
        "one": "likes green tea",
        "deleted": True,
        "left": ["lives in Oslo"],
        "cleared": True,
        "after": [],
    }


def test_memories_awaited_and_add_memory_router(bob):
    out = run(MEMORIES_ASYNC, bob)
    assert out == {
        "added": "prefers metric",
        "updated": "uses SI",
        "mine": ["uses SI"],
        "deleted": True,
    }
    assert not Memory.objects.exists()


def test_a_users_plugin_cannot_reach_another_users_memories(bob, alice):
    theirs = Memory.objects.create(user=alice, content="alice's")
    out = run(MEMORIES_OF_OTHERS, bob, {"other": theirs.id, "owner": str(alice.pk)})
    assert not any(out.values()), out
    assert list(Memory.objects.values_list("content", flat=True)) == ["alice's"]


def test_an_admin_call_reaches_other_users_memories(bob, alice):
    theirs = Memory.objects.create(user=bob, content="bob's")
    out = run(MEMORIES_OF_OTHERS, alice, {"other": theirs.id, "owner": str(bob.pk)})
    assert out["get"] == "bob's" and out["list"] == 1
    assert out["update"] and out["update_user"] and out["insert_for"] and out["add_for"]
    assert out["delete"] and out["clear"] and not out["delete_user"]  # already deleted
    assert not Memory.objects.exists()


# Models, Tools, Functions, Config.

MODELS = """
import json
from open_webui.models.models import Models
from open_webui.routers.models import get_models, get_base_models

class Pipe:
    async def pipe(self, body, __user__, __request__=None):
        plain = Models.get_all_models()
        awaited = await Models.get_models()
        one = await Models.get_model_by_id("echo_pipe")
        routed = await get_models(__request__, __user__) + await get_base_models(__user__)
        return json.dumps({
            "plain": [m.id for m in plain], "awaited": [m.id for m in awaited],
            "base": [m.id for m in Models.get_base_models()],
            "one": one.model_dump() if one else None,
            "routed": sorted({m.id for m in routed}),
        })
"""


def test_models_list_active_pipes(bob, make_function):
    make_function("echo_pipe", is_active=True)
    make_function("upper_filter", is_active=True)
    out = run(MODELS, bob)
    assert out["plain"] == out["awaited"] == out["base"] == out["routed"] == ["echo_pipe"]
    one = out["one"]
    assert one["name"] == "Echo Pipe" and one["is_active"] is True
    assert one["base_model_id"] is None and one["params"] == {}
    assert one["meta"]["description"] == "Replies with the last user message, prefixed."
    assert isinstance(one["created_at"], int) and one["user_id"]


def test_models_hide_what_the_caller_may_not_use(bob, alice, make_function):
    make_function("echo_pipe", is_active=True)
    settings = ModelSettings.objects.create(model_id="echo_pipe")
    settings.allowed_users.add(alice)
    ModelSettings.objects.create(model_id="upstream-model")
    assert run(MODELS, bob)["plain"] == ["upstream-model"]
    assert run(MODELS, alice)["plain"] == ["echo_pipe", "upstream-model"]


FUNCTIONS = """
import json
from open_webui.models.functions import Functions
from open_webui.models.tools import Tools, ToolUserModel
from open_webui.models.config import Config

class Pipe:
    async def pipe(self, body, __user__):
        found = await Functions.get_function_by_id("env_secret_pipe")
        try:
            Functions.update_function_by_id("env_secret_pipe", {"content": "x = 1"})
            refused = None
        except PermissionError as exc:
            refused = str(exc)
        try:
            await Functions.insert_new_function(__user__["id"], "pipe", {})
            refused_insert = False
        except PermissionError:
            refused_insert = True
        return json.dumps({
            "name": found.name, "content": found.content is not None,
            "listed": [f.id for f in Functions.get_functions()],
            "pipes": [f.id for f in await Functions.get_functions_by_type("pipe", True)],
            "valves": Functions.get_function_valves_by_id("env_secret_pipe"),
            "refused": refused, "refused_insert": refused_insert,
            "tools": [Tools.get_tools(), await Tools.get_tools_by_user_id(__user__["id"])],
            "tool": await Tools.get_tool_by_id("x"),
            "url": await Config.get("webui.url"), "name_setting": Config.get("webui.name"),
            "missing": Config.get("openai.api_keys", "none"),
        })
"""


def test_functions_are_read_only_and_hide_source_and_secrets(bob, alice, make_function):
    from valves.services import valves_update_global

    function = make_function("env_secret_pipe", is_active=True)
    make_function("echo_pipe")  # inactive: users' calls do not see it
    valves_update_global(
        user=alice, function=function, values={"API_KEY": "sk-live", "MODEL": "large"}
    )
    as_bob = run(FUNCTIONS, bob)
    assert as_bob["name"] == "Env Secret Pipe" and not as_bob["content"]
    assert as_bob["listed"] == as_bob["pipes"] == ["env_secret_pipe"]
    assert as_bob["valves"] is None
    assert (
        as_bob["refused"] == "update_function_by_id is not allowed from plugin code; use the admin."
    )
    assert as_bob["refused_insert"] is True
    assert as_bob["tools"] == [[], []] and as_bob["tool"] is None
    assert as_bob["url"] == "" and as_bob["name_setting"] == "fnplatform"
    assert as_bob["missing"] == "none"
    as_alice = run(FUNCTIONS, alice)
    assert as_alice["listed"] == ["echo_pipe", "env_secret_pipe"]  # an admin's call lists all
    # ... but another function's code and valves stay out of reach, even then.
    assert not as_alice["content"] and as_alice["valves"] is None


def test_a_plugin_reads_its_own_source_and_valves(alice, make_function):
    from valves.services import valves_update_global

    function = make_function("env_secret_pipe", is_active=True)
    valves_update_global(
        user=alice, function=function, values={"API_KEY": "sk-live", "MODEL": "large"}
    )
    source = (
        "import json\nfrom open_webui.models.functions import Functions\n"
        "class Pipe:\n    def pipe(self, body):\n"
        "        own = Functions.get_function_by_id('env_secret_pipe')\n"
        "        return json.dumps({'content': own.content is not None,\n"
        "            'valves': Functions.get_function_valves_by_id('env_secret_pipe')})\n"
    )
    call = source_call("env_secret_pipe", source)
    answer = asyncio.run(_answer_call(call, alice))
    assert answer == {"content": True, "valves": {"MODEL": "large"}}


# Imports.


def test_legacy_paths_load_the_same_tables():
    legacy = importlib.import_module("open_webui.apps.webui.models.memories")
    assert legacy.Memories is importlib.import_module("open_webui.models.memories").Memories
    source = (
        "from apps.webui.models.files import Files\n"
        "from open_webui.apps.webui.models.memories import Memories\n"
        "from open_webui.models.files import Files as Current\n"
        "class Pipe:\n    def pipe(self, body):\n        return str(Files is Current)\n"
    )
    with load_source(source) as loaded:
        assert loaded.module.Files is loaded.module.Current
        assert loaded.module.Memories is legacy.Memories


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("open_webui.models.chats", "get_all_chats_everywhere"),
        ("open_webui.models.files", "delete_all_files"),
        ("open_webui.storage.provider", "delete_all_files"),
    ],
)
def test_names_we_do_not_provide_fail_naming_them(module, name):
    table = next(
        getattr(importlib.import_module(module), attr)
        for attr in ("Chats", "Files", "Storage")
        if hasattr(importlib.import_module(module), attr)
    )
    with pytest.raises(AttributeError, match=name):
        getattr(table, name)


def test_a_router_we_do_not_provide_fails_naming_it():
    with pytest.raises(ModuleNotFoundError, match=r"open_webui\.routers\.audio"):
        importlib.import_module("open_webui.routers.audio")
