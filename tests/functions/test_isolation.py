"""Hostile plugins against a live server with worker processes: each fails alone.

After each one the server still answers /health and an ordinary completion, the
offending call got a clear error, and nothing was lost from the database.
"""

import os
import threading
import time

import httpx
import pytest

from functions.models import Function
from functions.services.functions import function_create, function_set_active
from functions.workers import cgroups
from tests.conftest import read_plugin

HOSTILE = {
    "spin": (
        "class Pipe:\n    def pipe(self, body):\n        while True:\n            pass\n",
        "exceeded its",
    ),
    "exit": (
        "import os\nclass Pipe:\n    def pipe(self, body):\n        os._exit(1)\n",
        "exited with status 1",
    ),
    "segfault": (
        "import ctypes\nclass Pipe:\n    def pipe(self, body):\n        ctypes.string_at(0)\n",
        "SIGSEGV",
    ),
    "memory": (
        "class Pipe:\n    def pipe(self, body):\n        return len(bytearray(4 * 1024**3))\n",
        "Memory",
    ),
    "forkloop": (
        "import os\nclass Pipe:\n    def pipe(self, body):\n        while True:\n"
        "            os.fork()\n",
        "processes per worker",
    ),
    "silent": (
        "import asyncio\nclass Pipe:\n    async def pipe(self, body):\n"
        "        await asyncio.sleep(3600)\n        yield 'never'\n",
        "first-chunk time limit",
    ),
}


@pytest.fixture
def worker_live(live, alice):
    if live.executor != "process":
        pytest.skip("hostile plugins need the worker-process executor")
    echo = function_create(user=alice, id="echo_pipe", content=read_plugin("echo_pipe"))
    function_set_active(user=alice, function=echo, active=True)
    return live


def install(alice, id: str, source: str) -> None:
    function = function_create(user=alice, id=id, content=source)
    function_set_active(user=alice, function=function, active=True)


def chat(live, api_key, model: str, *, stream: bool = False) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    headers = {"Authorization": f"Bearer {api_key}"}
    return httpx.post(f"{live.url}/api/chat/completions", json=body, headers=headers, timeout=60)


def assert_server_fine(live, api_key, functions_before: int) -> None:
    assert httpx.get(f"{live.url}/health", timeout=10).json()["status"] == "ok"
    answer = chat(live, api_key, "echo_pipe").json()
    assert answer["choices"][0]["message"]["content"] == "echo: hi"
    assert Function.objects.count() == functions_before


def fork_limit_enforced() -> bool:
    """Root ignores RLIMIT_NPROC: without a pids cgroup a fork loop would hit the machine."""
    return os.geteuid() != 0 or cgroups.pids_base() is not None


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_pipe_fails_alone(worker_live, api_key, alice, name):
    if name == "forkloop" and not fork_limit_enforced():
        pytest.skip("no pids cgroup and running as root: the fork limit cannot be enforced")
    source, expected = HOSTILE[name]
    install(alice, name, source)
    before = Function.objects.count()
    response = chat(worker_live, api_key, name, stream=name == "silent")
    text = response.text
    assert expected in text, text[:500]
    assert name in text  # the error names the function
    assert_server_fine(worker_live, api_key, before)


def test_an_endless_loop_in_a_filter_inlet_fails_the_request_clearly(worker_live, api_key, alice):
    install(
        alice,
        "spin_filter",
        "class Filter:\n    def inlet(self, body):\n        while True:\n            pass\n",
    )
    Function.objects.filter(pk="spin_filter").update(is_global=True)
    response = chat(worker_live, api_key, "echo_pipe")
    assert response.status_code == 400
    assert "spin_filter" in response.json()["detail"] or "exceeded" in response.json()["detail"]
    Function.objects.filter(pk="spin_filter").update(is_global=False)
    assert_server_fine(worker_live, api_key, Function.objects.count())


def test_printing_a_flood_does_not_hurt(worker_live, api_key, alice):
    install(
        alice,
        "printer",
        "import sys\nclass Pipe:\n    def pipe(self, body):\n"
        "        line = 'x' * 1023 + '\\n'\n        for _ in range(100 * 1024):\n"
        "            sys.stdout.write(line)\n        return 'printed'\n",
    )
    before = Function.objects.count()
    answer = chat(worker_live, api_key, "printer").json()
    # 100 MB through a pipe may outlast the live server's short 8 s limit on a busy
    # machine: then the call must fail clearly; either way the server is unharmed.
    if "choices" in answer:
        assert answer["choices"][0]["message"]["content"] == "printed"
    else:
        assert "printer" in answer["detail"] and "time limit" in answer["detail"]
    assert_server_fine(worker_live, api_key, before)


def test_plugins_cannot_read_the_servers_secrets(worker_live, api_key, alice):
    install(
        alice,
        "snoop",
        "import os, json\nclass Pipe:\n    def pipe(self, body):\n"
        "        keys = ('SECRET', 'DATABASE', 'KEY', 'REDIS', 'OPENAI')\n"
        "        return json.dumps(sorted(k for k in os.environ if any(p in k for p in keys)))\n",
    )
    answer = chat(worker_live, api_key, "snoop").json()
    assert answer["choices"][0]["message"]["content"] == "[]"


def test_an_endless_loop_at_import_is_refused_at_save(worker_live, api_key, alice):
    """Saving runs the code's import in a throwaway process, with a time limit."""
    before = Function.objects.count()
    source = "while True:\n    pass\nclass Pipe:\n    def pipe(self, body):\n        return 1\n"
    response = httpx.post(
        f"{worker_live.url}/api/v1/functions/create",
        json={"id": "import_spin", "name": "Import spin", "content": source, "meta": {}},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=60,
    )
    assert response.status_code == 400, response.text
    assert "longer than" in response.text
    assert not Function.objects.filter(pk="import_spin").exists()
    assert_server_fine(worker_live, api_key, before)


def test_sync_sleepers_do_not_stall_a_trivial_request(worker_live, api_key, alice):
    """Four sync pipes sleep 2 s at once; an echo request alongside is timed."""
    install(alice, "sleeper", read_plugin("slow_sync_pipe"))
    answers: list[str] = []

    def sleep_call() -> None:
        answers.append(chat(worker_live, api_key, "sleeper").text)

    sleepers = [threading.Thread(target=sleep_call) for _ in range(4)]
    for thread in sleepers:
        thread.start()
    time.sleep(0.3)  # the four are under way
    started = time.monotonic()
    quick = chat(worker_live, api_key, "echo_pipe").json()
    quick_seconds = time.monotonic() - started
    for thread in sleepers:
        thread.join()
    assert quick["choices"][0]["message"]["content"] == "echo: hi"
    assert len(answers) == 4 and all("slept" in answer for answer in answers), answers
    # A figure to read, not a timed assertion: bench/runtime.py measures it properly.
    print(f"\ntrivial request beside 4 sleeping sync pipes: {quick_seconds * 1000:.0f} ms")
