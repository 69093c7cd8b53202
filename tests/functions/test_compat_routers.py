"""The Open WebUI internals community files import beyond the host-data tables:
routers.files / images / users / retrieval, models.folders, utils.payload, main.app,
internal.db and config, from real plugin files on both executors; uploads are their
owner's only."""

import contextvars
import importlib
import json

import pytest
from asgiref.sync import sync_to_async

from chat.models import File
from functions.services import runtime
from functions.services.context import CallContext
from tests.support.inline import source_call, worker_call

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def uploads(tmp_path, monkeypatch):
    """Point the UPLOAD_DIR that plugin code (and its server side) sees at a temporary folder."""
    config = importlib.import_module("open_webui.config")
    folder = tmp_path / "uploads"
    folder.mkdir()
    monkeypatch.setattr(config, "UPLOAD_DIR", folder)
    return folder


def new_process_executor(tmp_path):
    from functions.workers.executor import ProcessExecutor
    from functions.workers.pool import Limits

    return ProcessExecutor(
        source_dir=str(tmp_path / "src"),
        limits=Limits(memory_mb=2048),
        timeout=60,
        first_chunk_timeout=60,
    )


async def answer_on(where: str, tmp_path, name: str, plugin_source, user) -> dict:
    """Run a plugin file's pipe for `user` on the inline or the process executor."""
    if where == "inline":
        return await answer(source_call(name, plugin_source(name)), user)
    executor = new_process_executor(tmp_path)
    try:
        return await answer(worker_call(executor, name, plugin_source(name)), user, executor)
    finally:
        await executor.stop()


def context_for(user, request: dict | None = None) -> CallContext:
    role = "admin" if user.is_staff else "user"
    return CallContext(
        user={"id": str(user.pk), "email": user.email, "name": user.username, "role": role},
        request=request,
    )


def request_for(user, models: dict | None = None) -> dict:
    from chat.services.plugin_request import caller_model
    from functions.services.request import request_data

    return request_data(
        origin={
            "method": "POST",
            "url": "http://testserver/api/chat/completions",
            "base_url": "http://testserver/",
        },
        user=caller_model(user),
        config={"WEBUI_URL": "http://testserver", "TASK_MODEL": ""},
        models=models or {"echo_pipe": {"id": "echo_pipe"}},
    )


async def answer(call, user, executor=None) -> dict:
    request = await sync_to_async(request_for)(user)
    chunks = runtime.run_pipe(call, {"messages": []}, context_for(user, request), executor=executor)
    return json.loads("".join([c.text async for batch in chunks for c in batch]))


# routers.images


@pytest.mark.parametrize("where", ["inline", "process"])
async def test_image_uploads_are_stored_for_the_caller_and_linked_as_file_content(
    where, bob, uploads, plugin_source, tmp_path
):
    result = await answer_on(where, tmp_path, "image_upload_pipe", plugin_source, bob)

    file_id = result["id"]
    assert result["markdown"] == f"![Generated Image](/api/v1/files/{file_id}/content)"
    assert result["old_url"].startswith("/api/v1/files/")
    assert result["old_url"] != result["markdown"]
    assert (result["name"], result["content_type"]) == ("generated-image.png", "image/png")
    assert result["size"] == len(b"\x89PNG\r\n\x1a\n fake pixel")
    assert result["prompt"] == "a red square"
    assert result["same_bytes"] is True
    assert result["bad"] is None
    row = await File.objects.aget(pk=file_id)
    assert row.user_id == bob.pk
    assert (uploads / row.path).read_bytes() == b"\x89PNG\r\n\x1a\n fake pixel"
    assert row.path == f"{file_id}_generated-image.png"
    assert await File.objects.filter(user=bob).acount() == 2


# routers.files (fastapi's UploadFile lives in the plugin environment: process executor)


async def test_upload_file_handler_takes_fastapi_upload_files_in_a_worker(
    bob, uploads, plugin_source, tmp_path
):
    result = await answer_on("process", tmp_path, "file_upload_tool_pipe", plugin_source, bob)

    file_id = result["id"]
    assert result["link"] == result["relative_path"] == f"/api/v1/files/{file_id}/content"
    # Only the name counts: "../../song.wav" neither escapes nor nests.
    assert (result["name"], result["content_type"], result["size"]) == ("song.wav", "audio/wav", 14)
    assert result["stored_user"] == str(bob.pk)
    row = await File.objects.aget(pk=file_id)
    assert (uploads / row.path).read_bytes() == b"RIFF fake wave"
    assert row.path == f"{file_id}_song.wav"
    # process=True stores the file and says why it was not processed.
    assert (result["processed_status"], result["processed_data"]) == (True, "failed")
    processed = await File.objects.exclude(pk=file_id).aget(user=bob)
    assert "no retrieval pipeline" in processed.data["error"]
    assert processed.meta["data"] == {"source": "planner"}
    # open_webui.main.app.state is the call's own; at import there was none.
    assert result["synthetic_webui_url"] == "http://testserver"
    assert result["models"] == ["echo_pipe"]
    assert result["at_import"] is None


UPLOAD_FOR_OTHERS = """
import io, json
from open_webui.routers.files import upload_file_handler

class Upload:
    def __init__(self, data, filename, content_type):
        self.file, self.filename = io.BytesIO(data), filename
        self.headers = {"content-type": content_type}

class Pipe:
    async def pipe(self, body, __user__, __request__=None):
        answers = {}
        for name, user in (("own", None), ("other", {"id": body["other"]})):
            try:
                item = await upload_file_handler(
                    __request__, file=Upload(b"x", "n.txt", "text/plain"), process=False, user=user
                )
                answers[name] = item.user_id
            except Exception as exc:
                answers[name] = f"{type(exc).__name__}: {exc}"
        plain = upload_file_handler(__request__, file=b"plain bytes", process=False)
        answers["plain"] = [plain.filename, plain.meta["content_type"], plain.meta["size"]]
        return json.dumps(answers)
"""


async def test_uploads_are_for_the_caller_and_only_admins_may_name_another_user(
    alice, bob, uploads
):
    async def run(user, other):
        chunks = runtime.run_pipe(
            source_call("up", UPLOAD_FOR_OTHERS), {"other": str(other.pk)}, context_for(user)
        )
        return json.loads("".join([c.text async for batch in chunks for c in batch]))

    as_bob = await run(bob, alice)
    assert as_bob["own"] == str(bob.pk)
    assert as_bob["other"].startswith("PermissionError: upload_file_handler stores files for")
    assert as_bob["plain"] == ["upload", None, 11]
    as_alice = await run(alice, bob)  # staff: Open WebUI's admin
    assert (as_alice["own"], as_alice["other"]) == (str(alice.pk), str(bob.pk))


def test_file_content_is_served_to_its_owner_only(alice, bob, outsider, uploads, client):
    (uploads / "f1_pic.png").write_bytes(b"png bytes")
    File.objects.create(
        id="f1",
        user=bob,
        filename="pic.png",
        path="f1_pic.png",
        meta={"name": "pic.png", "content_type": "image/png"},
    )
    client.force_login(bob)
    response = client.get("/api/v1/files/f1/content")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"png bytes"
    assert response["Content-Type"] == "image/png"
    assert response["Content-Security-Policy"] == "sandbox"
    assert client.get("/api/v1/files/f1").json()["meta"]["name"] == "pic.png"
    client.force_login(outsider)
    assert client.get("/api/v1/files/f1/content").status_code == 404
    assert client.get("/api/v1/files/f1").status_code == 404
    client.force_login(alice)  # staff
    assert client.get("/api/v1/files/f1/content").status_code == 200
    client.logout()
    assert client.get("/api/v1/files/f1/content").status_code == 401


# models.folders, routers.users, routers.retrieval, utils.payload, internal.db, config, main


@pytest.mark.parametrize("where", ["inline", "process"])
async def test_open_webui_internals_import_read_empty_and_refuse_clearly(
    where, bob, plugin_source, tmp_path
):
    result = await answer_on(where, tmp_path, "owui_internals_pipe", plugin_source, bob)

    assert result["user"] == "bob@example.com"
    assert (result["folder"], result["folders"]) == (None, [])
    assert result["update"] == (
        "PermissionError: Folders.update_folder_by_id_and_user_id is not available: "
        "fnplatform has no chat folders."
    )
    assert result["indexed"].startswith(
        "NotImplementedError: open_webui.routers.retrieval.process_file is not available: "
        "fnplatform has no retrieval pipeline"
    )
    assert (
        "open_webui.internal.db.get_db is not available: plugins have no database access"
        in (result["engine_at_import"])
    )
    assert result["session_use"].startswith("NoDatabaseAccess: the database session's execute")
    assert result["base"] is (where == "process")  # SQLAlchemy is the plugin environment's
    assert result["state_at_import"] is None
    assert result["webui_url"] == "http://testserver"
    assert result["same_models"] is True
    assert result["config_url"] == result["config_doc"] == ""
    assert result["ollama"] == {
        "model": "llama3",
        "messages": [{"role": "user", "content": "look", "images": ["AAAA"]}],
        "stream": True,
        "keep_alive": "5m",
        "system": "be brief",
        "options": {"num_predict": 7, "stop": ["\\n"]},
    }
    assert result["with_params"] == {"model": "m", "temperature": 0.5, "top_k": 3}
    assert result["with_system"] == {"role": "system", "content": "Hi bob"}


def test_app_state_outside_a_call_says_there_is_none():
    main = importlib.import_module("open_webui.main")
    # A fresh context: no call in progress (the test runner may carry an earlier one's).
    with pytest.raises(AttributeError, match="only available while the plugin answers a call"):
        contextvars.Context().run(getattr, main.app.state, "config")
    assert main.app.url_path_for("get_file_content_by_id", id="x") == "/api/v1/files/x/content"
    with pytest.raises(LookupError, match="No route exists for name 'nope'"):
        main.app.url_path_for("nope")


def test_config_holds_no_secret_and_users_router_is_the_users_table():
    config = importlib.import_module("open_webui.config")
    users_router = importlib.import_module("open_webui.routers.users")
    users = importlib.import_module("open_webui.models.users")
    assert users_router.Users is users.Users
    assert config.TOOL_SERVER_CONNECTIONS.value == []
    assert [c.env_name for c in config.PERSISTENT_CONFIG_REGISTRY] == [
        "WEBUI_URL",
        "TOOL_SERVER_CONNECTIONS",
    ]
    document = json.dumps(config.get_config())
    assert "KEY" not in document.upper() and "SECRET" not in document.upper()
