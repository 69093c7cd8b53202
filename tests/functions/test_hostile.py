"""Plugins that *want* something, against a live server: each is refused or contained.

Every test runs a real daphne with sandboxed workers. Throughout, /health answers
within a second; afterwards an ordinary completion still works, nothing was lost
from the database, and no secret, key, session key or other user's data reached
the plugin's output.
"""

import json
import os
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from django.conf import settings

from functions.models import Function, FunctionHealth
from functions.services.functions import function_create, function_set_active
from tests.conftest import read_plugin
from valves.models import FunctionValves
from valves.services import valves_update_global

HEALTH_LIMIT_SECONDS = 1.0


@pytest.fixture
def hostile_live(live, alice):
    echo = function_create(user=alice, id="echo_pipe", content=read_plugin("echo_pipe"))
    function_set_active(user=alice, function=echo, active=True)
    return live


def install(live, key: str, id: str, source: str) -> None:
    """Create and switch on a function through the API, as staff would: its save-time
    check runs where the server runs it."""
    headers = {"Authorization": f"Bearer {key}"}
    base = f"{live.url}/api/v1/functions"
    body = {"id": id, "name": id, "content": source, "meta": {}}
    created = httpx.post(f"{base}/create", json=body, headers=headers, timeout=60)
    assert created.status_code == 200, created.text
    toggled = httpx.post(f"{base}/id/{id}/toggle", headers=headers, timeout=60)
    assert toggled.json()["is_active"] is True


def chat(live, key: str, model: str, *, stream=False, timeout=60, **extra) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    return httpx.post(
        f"{live.url}/api/chat/completions",
        json=body | extra,
        headers={"Authorization": f"Bearer {key}"},
        timeout=timeout,
    )


class HealthWatch:
    """Polls /health in the background and keeps the slowest answer."""

    def __init__(self, url: str) -> None:
        self.url, self.slowest, self.failures = url, 0.0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                start = time.monotonic()
                try:
                    ok = client.get(f"{self.url}/health").status_code == 200
                except httpx.HTTPError as exc:
                    ok = False
                    self.failures.append(repr(exc))
                self.slowest = max(self.slowest, time.monotonic() - start)
                if not ok:
                    self.failures.append("not ok")
                self._stop.wait(0.2)

    def __enter__(self) -> "HealthWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)


@contextmanager
def contained(live, key: str):
    """The body runs an attack; around it, the server must stay healthy and whole."""
    before = Function.objects.count()
    with HealthWatch(live.url) as watch:
        yield watch
    assert not watch.failures, watch.failures[:3]
    assert watch.slowest < HEALTH_LIMIT_SECONDS, f"/health took {watch.slowest:.2f} s"
    answer = chat(live, key, "echo_pipe").json()
    assert answer["choices"][0]["message"]["content"] == "echo: hi"
    assert Function.objects.count() >= before  # nothing lost


def server_secrets() -> list[str]:
    """What no plugin may ever see."""
    return [settings.SECRET_KEY, *settings.FNPLATFORM_SECRETS_KEY.split(",")]


def text_of(response: httpx.Response) -> str:
    try:
        return response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return response.text


# The server's process, its environment and its files


def test_code_that_runs_only_outside_workers_never_runs_in_the_server(hostile_live, api_key, alice):
    marker = Path(settings.DATA_DIR) / "ran-in-server"
    marker.unlink(missing_ok=True)
    source = (
        "import os\n"
        "if not os.environ.get('FNPLATFORM_WORKER'):\n"
        f"    open({str(marker)!r}, 'w').write(str(os.getpid()))\n"
        "class Pipe:\n"
        "    class Valves:\n        pass\n"
        "    def pipe(self, body):\n        return 'ok'\n"
    )
    with contained(hostile_live, api_key):
        install(hostile_live, api_key, "sleeper", source)
        headers = {"Authorization": f"Bearer {api_key}"}
        for path in ("/api/models", "/api/v1/functions/export?include_valves=true"):
            response = httpx.get(hostile_live.url + path, headers=headers, timeout=30)
            assert response.status_code == 200
        assert text_of(chat(hostile_live, api_key, "sleeper")) == "ok"
    assert not marker.exists()


def test_a_pipe_cannot_read_the_servers_environment_memory_or_files(hostile_live, api_key, alice):
    data_dir = str(settings.DATA_DIR)
    source = (
        "import os, glob\n"
        "class Pipe:\n"
        "    def pipe(self, body):\n"
        "        found = []\n"
        f"        targets = [f'/proc/{{os.getppid()}}/environ', '/proc/{hostile_live.process.pid}"
        "/environ',\n"
        f"                   '/proc/{hostile_live.process.pid}/mem', '/proc/1/environ']\n"
        "        targets += glob.glob('/proc/*/environ')\n"
        f"        targets += glob.glob({data_dir!r} + '/*')\n"
        "        for path in targets:\n"
        "            try:\n"
        "                with open(path, 'rb') as f:\n"
        "                    found.append(path + ' ' + f.read(65536).decode('latin-1'))\n"
        "            except OSError as exc:\n"
        "                found.append(path + ' ' + type(exc).__name__)\n"
        "        try:\n"
        "            import fnplatform.settings as s\n"
        "            found.append('settings ' + s.SECRET_KEY + s.FNPLATFORM_SECRETS_KEY)\n"
        "        except Exception as exc:\n"
        "            found.append('settings ' + type(exc).__name__)\n"
        "        return ' | '.join(found)\n"
    )
    with contained(hostile_live, api_key):
        install(hostile_live, api_key, "snoop", source)
        output = text_of(chat(hostile_live, api_key, "snoop"))
    for secret in server_secrets():
        assert secret not in output
    assert "SQLite format" not in output
    assert "sessionid" not in output and api_key not in output


# One function against another


def test_a_plugin_cannot_capture_another_functions_valves_or_calls(
    hostile_live, api_key, bob_key, alice, bob
):
    thief = (
        "import json, sys\n"
        "from functions.workers import worker\n"
        "CAUGHT = []\n"
        "original = worker.Worker.prepared\n"
        "def spy(self, message):\n"
        "    CAUGHT.append(json.dumps(message, default=str))\n"
        "    return original(self, message)\n"
        "worker.Worker.prepared = spy\n"
        "_dumps = json.dumps\n"
        "class Pipe:\n"
        "    def pipe(self, body):\n"
        "        others = [n for n in sys.modules if n.startswith('function_')]\n"
        "        return ' | '.join(CAUGHT + others)\n"
    )
    victim = (
        "from pydantic import BaseModel\n"
        "class Pipe:\n"
        "    class Valves(BaseModel):\n        OPENAI_API_KEY: str = ''\n"
        "    class UserValves(BaseModel):\n        PERSONAL_TOKEN: str = ''\n"
        "    def pipe(self, body):\n        return 'victim ok'\n"
    )
    with contained(hostile_live, api_key):
        install(hostile_live, api_key, "thief", thief)
        install(hostile_live, api_key, "victim", victim)
        valves_update_global(
            user=alice,
            function=Function.objects.get(pk="victim"),
            values={"OPENAI_API_KEY": "sk-victim-secret"},
        )
        chat(hostile_live, api_key, "thief")  # the spy is in place in its own worker
        assert text_of(chat(hostile_live, bob_key, "victim")) == "victim ok"
        output = text_of(chat(hostile_live, api_key, "thief"))
    assert "sk-victim-secret" not in output
    assert "function_victim" not in output and "function_echo_pipe" not in output
    assert "bob@example.com" not in output


def test_forged_host_call_ids_are_refused(hostile_live, api_key, bob_key, alice):
    forger = (
        "from open_webui._host import current_call\n"
        "from open_webui.models.users import Users\n"
        "class Pipe:\n"
        "    def pipe(self, body):\n"
        "        seen = []\n"
        "        for guess in ['c0', 'c1', 'c2', 'c3', 'c10', None, '']:\n"
        "            current_call.set(guess)\n"
        "            try:\n"
        "                seen.append(str([u.email for u in Users.get_users()]))\n"
        "            except Exception as exc:\n"
        "                seen.append(type(exc).__name__ + ': ' + str(exc))\n"
        "        return ' | '.join(seen)\n"
    )
    with contained(hostile_live, bob_key):
        install(hostile_live, api_key, "forger", forger)
        output = text_of(chat(hostile_live, bob_key, "forger"))
    assert "alice@example.com" not in output
    assert "refused" in output


# Work that will not stop


def _descendant_cpu(pid: int) -> float:
    """CPU seconds used so far by every live process under pid."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, list(children.get(pid, []))
    while todo:
        child = todo.pop()
        todo += children.get(child, [])
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def test_a_sync_hook_past_its_deadline_leaves_no_thread_spinning(hostile_live, api_key, alice):
    spin = "class Pipe:\n    def pipe(self, body):\n        while True:\n            pass\n"
    with contained(hostile_live, api_key):
        install(hostile_live, api_key, "spinner", spin)
        response = chat(hostile_live, api_key, "spinner", stream=True)
        assert "spinner" in response.text and "time limit" in response.text
        time.sleep(1.5)  # the kill grace
        before = _descendant_cpu(hostile_live.process.pid)
        time.sleep(2)
        used = _descendant_cpu(hostile_live.process.pid) - before
    assert used < 0.8, f"workers used {used:.1f} CPU s in 2 s after the deadline"


def test_a_crash_fails_only_its_own_function(hostile_live, api_key, alice):
    slow = (
        "import time\nclass Pipe:\n    def pipe(self, body):\n"
        "        for i in range(20):\n            time.sleep(0.1)\n            yield 'x'\n"
    )
    crash = "import os\nclass Pipe:\n    def pipe(self, body):\n        os._exit(1)\n"
    with contained(hostile_live, api_key):
        install(hostile_live, api_key, "innocent", slow)
        install(hostile_live, api_key, "crasher", crash)
        for _ in range(3):
            result: dict = {}

            def stream_innocent(result=result) -> None:
                result["r"] = chat(hostile_live, api_key, "innocent")

            thread = threading.Thread(target=stream_innocent)
            thread.start()
            time.sleep(0.3)
            assert "exited with status 1" in chat(hostile_live, api_key, "crasher").text
            thread.join(30)
            assert text_of(result["r"]) == "x" * 20
    assert not FunctionHealth.objects.filter(function_id="innocent").exclude(failures=[]).exists()
    assert FunctionHealth.objects.get(function_id="crasher").is_quarantined


def test_a_stream_that_never_ends_is_stopped_and_costs_the_server_nothing(
    hostile_live, api_key, alice
):
    forever = "class Pipe:\n    def pipe(self, body):\n        while True:\n            yield 'x'\n"
    with contained(hostile_live, api_key):
        install(hostile_live, api_key, "forever", forever)
        rss_before = _rss_mb(hostile_live.process.pid)
        start = time.monotonic()
        with httpx.stream(
            "POST",
            f"{hostile_live.url}/api/chat/completions",
            json={"model": "forever", "messages": [], "stream": True},
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=60,
        ) as response:
            tail = b""
            for chunk in response.iter_bytes():
                tail = (tail + chunk)[-4096:]
        elapsed = time.monotonic() - start
        growth = _rss_mb(hostile_live.process.pid) - rss_before
    assert b"forever" in tail and (b"time limit" in tail or b"response limit" in tail)
    assert elapsed < 8 + 4, f"the stream ran {elapsed:.1f} s past an 8 s deadline"
    assert growth < 150, f"the server grew by {growth:.0f} MB"


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_an_oversized_answer_is_reported_as_what_it_is(hostile_live, api_key, alice):
    big = "class Pipe:\n    def pipe(self, body):\n        return 'x' * (200 * 1024 * 1024)\n"
    with contained(hostile_live, api_key):
        install(hostile_live, api_key, "bigmouth", big)
        start = time.monotonic()
        response = chat(hostile_live, api_key, "bigmouth")
        elapsed = time.monotonic() - start
    assert "64 MB limit" in response.text and "bigmouth" in response.text
    assert "time limit" not in response.text
    assert elapsed < 8


# Saving code


def test_saves_of_code_that_loops_at_import_do_not_lock_the_database(hostile_live, api_key, alice):
    headers = {"Authorization": f"Bearer {api_key}"}
    loop = '"""\ntitle: Loop\n"""\nwhile True:\n    pass\nclass Pipe:\n    pass\n'
    results: dict[str, httpx.Response] = {}

    def save(id: str, content: str) -> None:
        results[id] = httpx.post(
            f"{hostile_live.url}/api/v1/functions/create",
            json={"id": id, "name": id, "content": content, "meta": {}},
            headers=headers,
            timeout=60,
        )

    with contained(hostile_live, api_key):
        threads = [threading.Thread(target=save, args=(f"loop{i}", loop)) for i in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)  # the three checks are running now
        save("good_one", read_plugin("echo_pipe"))
        for thread in threads:
            thread.join(60)
    assert results["good_one"].status_code == 200, results["good_one"].text
    for i in range(3):
        assert results[f"loop{i}"].status_code == 400
        assert "longer than" in results[f"loop{i}"].json()["detail"]
    assert not Function.objects.filter(id__startswith="loop").exists()


# Where plugin code runs: never the server's process


class _Reports(BaseHTTPRequestHandler):
    """Collects what plugins say about the process they run in."""

    seen: list[dict] = []

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)
        type(self).seen.append({k: v[0] for k, v in query.items()})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def reports():
    _Reports.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Reports)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def _reporting(kind: str, port: int) -> str:
    """A plugin of this kind that reports its process from module level and __init__."""
    report = (
        "import os, sys, urllib.parse, urllib.request\n"
        "def report(where):\n"
        "    query = urllib.parse.urlencode({'where': where, 'pid': os.getpid(),\n"
        "        'settings': os.environ.get('DJANGO_SETTINGS_MODULE', ''),\n"
        "        'argv': ' '.join(sys.argv)})\n"
        f"    urllib.request.urlopen('http://127.0.0.1:{port}/?' + query, timeout=5).read()\n"
        f"report('{kind}-module')\n"
        "from pydantic import BaseModel, Field\n"
    )
    valves = (
        "    class Valves(BaseModel):\n"
        "        priority: int = 0\n"
        "        MODE: str = Field(default='a', json_schema_extra={'input': "
        "{'type': 'select', 'options': 'modes'}})\n"
        "        @classmethod\n"
        "        def modes(cls, __user__=None):\n"
        f"            report('{kind}-options')\n"
        "            return ['a', 'b']\n"
        "    class UserValves(BaseModel):\n        NOTE: str = ''\n"
        "    def __init__(self):\n"
        f"        report('{kind}-init')\n"
        "        self.valves = self.Valves()\n"
    )
    hooks = {
        "pipe": "class Pipe:\n" + valves + "    def pipe(self, body):\n        return 'hi'\n",
        "filter": "class Filter:\n"
        + valves
        + "    def inlet(self, body):\n        return body\n"
        + "    def outlet(self, body):\n        return body\n",
        "action": "class Action:\n"
        + valves
        + "    async def action(self, body):\n        return {'content': 'done'}\n",
    }
    return report + hooks[kind]


def test_plugin_code_never_runs_in_the_servers_process(
    hostile_live, reports, alice_client, api_key, bob_key, alice
):
    port = reports.server_address[1]
    headers = {"Authorization": f"Bearer {api_key}"}
    base = f"{hostile_live.url}/api/v1/functions"
    url = hostile_live.url

    def api(method: str, path: str, **kwargs) -> httpx.Response:
        response = httpx.request(method, url + path, headers=headers, timeout=30, **kwargs)
        assert response.status_code < 500, (path, response.text[:300])
        return response

    for kind in ("pipe", "filter", "action"):
        source = _reporting(kind, port)
        api("POST", "/api/v1/functions/create", json={"id": f"r_{kind}", "content": source})
        api("POST", f"/api/v1/functions/id/r_{kind}/toggle")
        api("POST", f"/api/v1/functions/id/r_{kind}/toggle/global")
        edited = source + "\n# edited\n"
        api(
            "POST",
            f"/api/v1/functions/id/r_{kind}/update",
            json={"id": f"r_{kind}", "name": kind, "content": edited, "meta": {}},
        )
        api("POST", f"/api/v1/functions/id/r_{kind}/rollback", json={"revision": 1})
        for path in ("valves", "valves/spec", "valves/user", "valves/user/spec"):
            api("GET", f"/api/v1/functions/id/r_{kind}/{path}")
        api("POST", f"/api/v1/functions/id/r_{kind}/valves/update", json={"priority": 1})
        api("POST", f"/api/v1/functions/id/r_{kind}/valves/user/update", json={"NOTE": "n"})
    exported = api("GET", "/api/v1/functions/export?include_valves=true").json()
    for item in exported:
        item["id"] = "copy_" + item["id"]
    api("POST", "/api/v1/functions/import", json={"functions": exported, "overwrite": False})
    api("GET", "/api/models")
    api("GET", "/v1/models")
    answer = api(
        "POST",
        "/api/chat/completions",
        json={"model": "r_pipe", "messages": [{"role": "user", "content": "hi"}]},
    ).json()
    message = {"id": "m1", "role": "assistant", "content": answer["choices"][0]["message"]}
    api(
        "POST",
        "/api/chat/actions/r_action",
        json={"model": "r_pipe", "messages": [message], "id": "m1"},
    )
    api("POST", "/api/chat/completed", json={"model": "r_pipe", "messages": [message]})
    session = httpx.Client(base_url=url, timeout=30)
    _admin_pages(session, alice_client, ["r_pipe", "r_filter", "r_action"])
    assert base  # the API above and the admin pages below both went through

    server_pid = str(hostile_live.process.pid)
    seen = _Reports.seen
    wheres = {r["where"] for r in seen}
    assert {"pipe-module", "pipe-init", "filter-init", "action-init"} <= wheres
    assert "pipe-options" in wheres  # the valves pages listed dynamic options
    for entry in seen:
        assert entry["pid"] != server_pid, entry
        assert entry["settings"] == "fnplatform.worker_settings", entry
        assert "daphne" not in entry["argv"], entry


def _admin_pages(session: httpx.Client, alice_client, ids: list[str]) -> None:
    """The admin's valves pages and user valves pages, with alice's session."""
    cookie = alice_client.cookies.get("sessionid")
    session.cookies.set("sessionid", cookie.value)
    for id in ids:
        for path in (
            f"/admin/functions/function/{id}/change/",
            f"/admin/functions/function/{id}/valves/",
            f"/valves/{id}/",
        ):
            assert session.get(path).status_code < 500, path


def test_nothing_secret_reaches_an_export(hostile_live, api_key, alice):
    victim = (
        "from pydantic import BaseModel\nclass Pipe:\n"
        "    class Valves(BaseModel):\n        OPENAI_API_KEY: str = ''\n        MODE: str = 'x'\n"
        "    def pipe(self, body):\n        return 'ok'\n"
    )
    install(hostile_live, api_key, "keeper", victim)
    valves_update_global(
        user=alice,
        function=Function.objects.get(pk="keeper"),
        values={"OPENAI_API_KEY": "sk-keep-me", "MODE": "y"},
    )
    exported = httpx.get(
        f"{hostile_live.url}/api/v1/functions/export?include_valves=true",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30,
    ).text
    assert "sk-keep-me" not in exported and '"MODE": "y"' in json.dumps(json.loads(exported))
    assert FunctionValves.objects.get(function_id="keeper").secrets


# The doors: permissions, bad input, keys


def test_staff_without_permissions_cannot_author_run_export_or_delete(
    hostile_live, api_key, alice, staff_with
):
    from fnplatform.accounts.services import api_key_create

    bare = staff_with("stan")
    _, bare_key = api_key_create(user=bare, name="bare")
    headers = {"Authorization": f"Bearer {bare_key}"}
    base = f"{hostile_live.url}/api/v1/functions"
    body = {"id": "sneaky", "name": "x", "content": read_plugin("echo_pipe"), "meta": {}}
    attempts = [
        httpx.post(f"{base}/create", json=body, headers=headers, timeout=30),
        httpx.get(f"{base}/export?include_valves=true", headers=headers, timeout=30),
        httpx.post(f"{base}/id/echo_pipe/update", json=body, headers=headers, timeout=30),
        httpx.post(f"{base}/id/echo_pipe/toggle", headers=headers, timeout=30),
        httpx.delete(f"{base}/id/echo_pipe/delete", headers=headers, timeout=30),
    ]
    for response in attempts:
        assert response.status_code == 403, (response.request.url, response.text)
        assert "permission" in response.json()["detail"]
    assert not Function.objects.filter(pk="sneaky").exists()
    assert Function.objects.get(pk="echo_pipe").is_active


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"metadata": [1]}, id="metadata-list"),
        pytest.param({"chat_id": {}}, id="chat-id-object"),
        pytest.param({"background_tasks": "x"}, id="background-tasks-string"),
    ],
)
def test_wrong_types_in_a_completion_are_a_4xx_naming_the_field(hostile_live, api_key, extra):
    response = chat(hostile_live, api_key, "echo_pipe", **extra)
    assert response.status_code == 422, response.text
    assert next(iter(extra)) in response.text


def test_a_lone_surrogate_is_refused_at_the_door_and_blamed_on_no_one(
    hostile_live, api_key, bob_key, alice
):
    body = b'{"model": "echo_pipe", "messages": [{"role": "user", "content": "\\ud800"}]}'
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    response = httpx.post(
        f"{hostile_live.url}/api/chat/completions", content=body, headers=headers, timeout=30
    )
    assert response.status_code == 400 and "messages" in response.text
    assert not FunctionHealth.objects.filter(function_id="echo_pipe").exclude(failures=[]).exists()
    victim = (
        "from pydantic import BaseModel\nclass Pipe:\n"
        "    class UserValves(BaseModel):\n        NOTE: str = ''\n"
        "    def pipe(self, body, __user__):\n        return 'note: ' + __user__['valves'].NOTE\n"
    )
    install(hostile_live, api_key, "noted", victim)
    stored = httpx.post(
        f"{hostile_live.url}/api/v1/functions/id/noted/valves/user/update",
        content=b'{"NOTE": "\\udfff"}',
        headers={"Authorization": f"Bearer {bob_key}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert stored.status_code == 400
    assert text_of(chat(hostile_live, bob_key, "noted")) == "note: "  # bob's calls still work


def test_an_api_key_made_in_the_admin_travels_in_no_cookie(hostile_live, alice_client, bob):
    import re

    with httpx.Client(base_url=hostile_live.url, timeout=30) as browser:
        # alice's session, signed in by the test (the server hashes passwords its own way).
        browser.cookies.set("sessionid", alice_client.cookies["sessionid"].value)
        form = browser.get("/admin/accounts/apikey/add/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        created = browser.post(
            "/admin/accounts/apikey/add/",
            data={"user": bob.pk, "name": "from-admin", "csrfmiddlewaretoken": token},
        )
        key = re.search(r'id="new-api-key">(fnp_[^<]+)<', created.text).group(1)
        assert created.text.count(key) == 1
        assert all(key not in value for value in created.headers.get_list("set-cookie"))
        assert all(key not in (cookie.value or "") for cookie in browser.cookies.jar)
        messages = browser.cookies.get("messages")
        if messages:  # signed and compressed: decode it as the server would
            from django.contrib.messages.storage.cookie import CookieStorage
            from django.test import RequestFactory

            stored = CookieStorage(RequestFactory().get("/"))._decode(messages) or []
            assert all(key not in str(message) for message in stored)
        assert key not in browser.get("/admin/accounts/apikey/").text
