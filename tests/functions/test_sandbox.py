"""The sandbox, from inside real worker and check processes: what a plugin can and
cannot reach. No mocks: each test runs code in a sandboxed process and reads back
what it saw."""

import hashlib
import http.server
import json
import os
import secrets
import shutil
import threading
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from functions.services.loader import SourceError
from functions.workers import sandbox
from functions.workers.check import check_in_worker
from functions.workers.pool import Limits, WorkerPool

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")


def require_uid_drop() -> None:
    """Skip where this host's sandbox cannot drop to its uid (then /health says why: a
    code tree in a 0700 directory, say), as the status tests check."""
    drop = next(p for p in sandbox.status().protections if p.name == "uid_drop")
    if not drop.on:
        pytest.skip(f"the uid drop is off on this host: {drop.detail}")


# What a plugin tries; the same code runs in a worker (as a pipe) and at a save-time check.
PROBE = """
import json, os, sys

def probe(data):
    seen = {"uid": os.getuid(), "ppid": os.getppid(), "home": os.environ.get("HOME")}
    seen["file"] = __file__
    pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    seen["proc_pids"] = sorted(pids)
    for key, path in data["paths"].items():
        try:
            with open(path, "rb") as handle:
                seen[key] = handle.read().decode(errors="replace")
        except OSError as exc:
            seen[key] = type(exc).__name__
    try:
        import fnplatform.settings as stolen
        seen["secret_key"] = stolen.SECRET_KEY
    except BaseException as exc:
        seen["secret_key"] = type(exc).__name__
    with open(os.path.join(os.environ["HOME"], "note.txt"), "w") as handle:
        handle.write("written")
    import tempfile
    with tempfile.NamedTemporaryFile("w", delete=False) as handle:
        handle.write("temp")
    seen["tmp_file"] = handle.name
    return seen
"""
PIPE = PROBE + "\nclass Pipe:\n    def pipe(self, body):\n        return json.dumps(probe(body))\n"


def call(source: str, data: dict) -> dict:
    return {
        "op": "call",
        "function_id": "snoop",
        "source": source,
        "sha256": hashlib.sha256(source.encode()).hexdigest(),
        "hook": "pipe",
        "data": data,
        "stream": False,
        "context": {"user": {"id": "7", "role": "user"}},
    }


async def run_pipe(source: str, data: dict, **limits) -> tuple[dict, WorkerPool]:
    pool = WorkerPool(1, "/nonexistent-source-dir", limits=Limits(**limits))
    try:
        messages = [
            m
            async for m in pool.call(
                call(source, data), on_event=_nothing, on_event_call=_nothing, timeout=30
            )
        ]
        return messages[-1]["value"], pool
    except BaseException:
        await pool.stop()
        raise


async def _nothing(event):
    return None


@pytest.fixture
def marker():
    """A file in the data dir with a marker in it, as a plugin would like to read."""
    text = f"marker-{secrets.token_hex(8)}"
    path = Path(django_settings.DATA_DIR) / f"test-marker-{os.getpid()}.txt"
    path.write_text(text)
    yield path, text
    path.unlink(missing_ok=True)


def targets(marker_path: Path) -> dict:
    data_dir = Path(django_settings.DATA_DIR)
    return {
        "marker": str(marker_path),
        "secret_key_file": str(data_dir / "secret_key"),
        "secrets_key_file": str(data_dir / "secrets_key"),
        "environ": f"/proc/{os.getpid()}/environ",
        "server_cmdline": f"/proc/{os.getpid()}/cmdline",
        "server_mem": f"/proc/{os.getpid()}/mem",
    }


def assert_contained(seen: dict, marker_text: str) -> None:
    assert marker_text not in json.dumps(seen)
    for key in (
        "marker",
        "secret_key_file",
        "secrets_key_file",
        "environ",
        "server_mem",
        "server_cmdline",
    ):
        assert seen[key] in ("FileNotFoundError", "PermissionError"), (key, seen[key][:80])
    assert seen["ppid"] != os.getpid()
    assert os.getpid() not in seen["proc_pids"]
    assert max(seen["proc_pids"]) < 100  # its own pid namespace: bwrap's reaper, itself
    assert seen["secret_key"] != django_settings.SECRET_KEY


@needs_bwrap
async def test_a_worker_sees_neither_the_data_dir_nor_the_server(marker):
    path, text = marker
    seen, pool = await run_pipe(PIPE, {"paths": targets(path)})
    try:
        seen = json.loads(seen)
        assert_contained(seen, text)
        # Its writes land in its own scratch dir, which is also its home and temp dir.
        assert seen["home"] == "/scratch"
        assert seen["file"].startswith("/scratch/plugin_sources/")
        assert seen["tmp_file"].startswith("/tmp/")
        [worker] = pool.workers
        scratch = worker.box.scratch / "home"
        assert (scratch / "note.txt").read_text() == "written"
        assert list(scratch.joinpath("plugin_sources").iterdir())  # not in the data dir
    finally:
        await pool.stop()
    assert not worker.box.scratch.exists()  # removed with the worker


@needs_bwrap
@pytest.mark.skipif(os.geteuid() != 0, reason="the uid drop is for a server running as root")
async def test_a_root_servers_worker_runs_as_the_sandbox_uid(marker):
    require_uid_drop()
    path, _ = marker
    seen, pool = await run_pipe(PIPE, {"paths": targets(path)})
    try:
        uid = django_settings.FUNCTIONS_SANDBOX_UID
        assert json.loads(seen)["uid"] == uid
        [worker] = pool.workers
        # Seen from the server: real, effective, saved and filesystem uids, gids too.
        status = Path(f"/proc/{worker.pid}/status").read_text().splitlines()
        for field in ("Uid:", "Gid:"):
            line = next(line for line in status if line.startswith(field))
            assert line.split()[1:] == [str(uid)] * 4
        assert Path(f"/proc/{worker.process.pid}/status").read_text().count(f"\t{uid}\t") >= 2
    finally:
        await pool.stop()


@needs_bwrap
async def test_a_worker_keeps_the_network():
    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello from the host")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    source = (
        "import urllib.request\nclass Pipe:\n    def pipe(self, body):\n"
        "        return urllib.request.urlopen(body['url'], timeout=10).read().decode()\n"
    )
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        answer, pool = await run_pipe(source, {"url": url})
        await pool.stop()
    finally:
        server.shutdown()
    assert answer == "hello from the host"


@needs_bwrap
def test_the_save_time_check_runs_in_the_same_sandbox(marker, settings):
    path, text = marker
    # The check only imports the code: the probe runs at import and reports by raising.
    source = PROBE + f"\nraise RuntimeError(json.dumps(probe({{'paths': {targets(path)!r}}})))\n"
    with pytest.raises(SourceError) as info:
        check_in_worker(source, function_id="snoop", source_dir="/x", timeout=20, limits=Limits())
    message = info.value.messages[0]
    seen = json.loads(message[message.index("{") :])
    assert_contained(seen, text)
    assert seen["file"].startswith("/scratch/plugin_sources/")
    if os.geteuid() == 0:
        require_uid_drop()
        assert seen["uid"] == settings.FUNCTIONS_SANDBOX_UID


def test_health_lists_each_protection_of_the_sandbox(client, db):
    body = client.get(reverse("health")).json()
    protections = body["sandbox"]["protections"]
    assert set(protections) == set(sandbox.PROTECTIONS)
    assert body["sandbox"]["ok"] == all(p["on"] for p in protections.values())
    if shutil.which("bwrap"):
        assert protections["bubblewrap"]["on"] is True


def test_a_missing_bubblewrap_is_reported_and_workers_run_degraded(client, db, settings):
    settings.FUNCTIONS_BWRAP = "/nonexistent/bwrap"
    body = client.get(reverse("health")).json()
    protections = body["sandbox"]["protections"]
    assert body["sandbox"]["ok"] is False and body["status"] == "ok"
    assert protections["bubblewrap"]["on"] is False
    assert "/nonexistent/bwrap" in protections["bubblewrap"]["detail"]
    assert protections["user_namespaces"]["on"] is False
    assert not sandbox.prepare().sandboxed


def test_sandbox_off_is_reported_loudly(client, db, settings, caplog):
    settings.FUNCTIONS_SANDBOX = "off"
    sandbox._probe.cache_clear()
    body = client.get(reverse("health")).json()
    assert body["sandbox"]["mode"] == "off"
    assert not any(
        body["sandbox"]["protections"][name]["on"]
        for name in ("bubblewrap", "user_namespaces", "uid_drop")
    )
    assert "UNSANDBOXED" in caplog.text


async def test_required_refuses_to_start_workers_without_every_protection(settings):
    settings.FUNCTIONS_SANDBOX = "required"
    settings.FUNCTIONS_BWRAP = "/nonexistent/bwrap"
    with pytest.raises(sandbox.SandboxUnavailable, match=r"required.*bubblewrap"):
        await run_pipe("class Pipe:\n    def pipe(self, body):\n        return 1\n", {})
    with pytest.raises(SourceError, match="bubblewrap"):
        check_in_worker("x = 1\n", function_id="f", source_dir="/x", timeout=5, limits=Limits())
