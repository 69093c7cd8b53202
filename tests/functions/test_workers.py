"""Worker processes: hooks run out of the server, hostile plugins fail only themselves."""

import asyncio
import contextlib
import hashlib
import os

import pytest

from functions.workers import cgroups
from functions.workers.pool import (
    CallTimeout,
    LimitExceeded,
    Limits,
    PluginFailed,
    WorkerCrashed,
    WorkerPool,
    malformed,
)


def request(source: str, *, hook="pipe", data=None, stream=False, **extra) -> dict:
    return {
        "op": "call",
        "function_id": extra.pop("function_id", "plug"),
        "source": source,
        "sha256": hashlib.sha256(source.encode()).hexdigest(),
        "hook": hook,
        "data": data if data is not None else {"messages": []},
        "stream": stream,
        "context": extra.pop("context", {"user": {"id": "7", "name": "bob", "role": "user"}}),
        **extra,
    }


@contextlib.asynccontextmanager
async def one_worker(tmp_path, **limits):
    """A pool of one worker with these limits, stopped afterwards."""
    pool = WorkerPool(1, str(tmp_path), limits=Limits(**limits))
    try:
        yield pool
    finally:
        await pool.stop()


@pytest.fixture
async def pool(tmp_path):
    workers = WorkerPool(2, str(tmp_path), limits=Limits(memory_mb=1024))
    yield workers
    await workers.stop()


async def no_events(event):
    return None


async def run(pool, req, *, timeout=10, on_event=no_events, on_event_call=no_events):
    messages = [
        m
        async for m in pool.call(
            req, on_event=on_event, on_event_call=on_event_call, timeout=timeout
        )
    ]
    return messages


async def result(pool, req, **options):
    return (await run(pool, req, **options))[-1]["value"]


async def test_sync_and_async_hooks_return_values(pool):
    sync = "class Pipe:\n    def pipe(self, body):\n        return 'sync ok'\n"
    asynchronous = "class Pipe:\n    async def pipe(self, body):\n        return {'a': 1}\n"
    assert await result(pool, request(sync)) == "sync ok"
    assert await result(pool, request(asynchronous)) == {"a": 1}


async def test_streams_arrive_in_batches_and_the_first_item_early(pool):
    source = (
        "import time\nclass Pipe:\n    def pipe(self, body):\n        yield 'first'\n"
        "        time.sleep(0.5)\n        for i in range(500):\n            yield f' {i}'\n"
    )
    messages = await run(pool, request(source, stream=True))
    batches = [m["items"] for m in messages if m["op"] == "chunks"]
    assert batches[0] == [{"t": "first", "d": None, "done": False}]
    text = "".join(item["t"] for batch in batches for item in batch)
    assert text == "first" + "".join(f" {i}" for i in range(500))
    assert len(batches) < 501  # items that piled up travelled together


async def test_events_and_event_calls_cross_the_process_boundary(pool):
    source = (
        "class Pipe:\n    async def pipe(self, body, __event_emitter__, __event_call__):\n"
        "        await __event_emitter__({'type': 'status', 'data': {'description': 'hi'}})\n"
        "        answer = await __event_call__({'type': 'input', 'data': {'title': 'name?'}})\n"
        "        return f'hello {answer}'\n"
    )
    events = []

    async def on_event(event):
        events.append(event)

    async def on_event_call(event):
        return "ada"

    assert await result(pool, request(source), on_event=on_event, on_event_call=on_event_call) == (
        "hello ada"
    )
    assert events == [{"type": "status", "data": {"description": "hi"}}]


async def test_a_call_waiting_for_an_answer_is_not_held_to_its_time_limit(pool):
    source = (
        "import time\nclass Pipe:\n    async def pipe(self, body, __event_call__):\n"
        "        answer = await __event_call__({'type': 'input', 'data': {}})\n"
        "        if body.get('spin'):\n            time.sleep(10)\n"
        "        return f'got {answer}'\n"
    )

    async def thinking_user(event):
        await asyncio.sleep(1.5)  # longer than the call's limit: a user deciding
        return "yes"

    answered = await result(pool, request(source), timeout=1, on_event_call=thinking_user)
    assert answered == "got yes"
    # Once answered, its clock runs again.
    spinning = request(source, data={"messages": [], "spin": True})
    with pytest.raises(CallTimeout, match="time limit of 1 s"):
        await result(pool, spinning, timeout=1, on_event_call=thinking_user)


async def test_valves_user_valves_and_reserved_arguments(pool):
    source = (
        "from pydantic import BaseModel\nclass Pipe:\n"
        "    class Valves(BaseModel):\n        NAME: str = 'x'\n"
        "    class UserValves(BaseModel):\n        loud: bool = False\n"
        "    def __init__(self):\n        self.valves = self.Valves()\n"
        "    def pipe(self, body, __user__, __chat_id__, __id__):\n"
        "        loud = __user__['valves'].loud\n"
        "        return [self.valves.NAME, loud, __user__['id'], __chat_id__, __id__]\n"
    )
    context = {"user": {"id": "7", "role": "user"}, "chat_id": "c1"}
    req = request(source, valves={"NAME": "set"}, user_valves={"loud": True}, context=context)
    assert await result(pool, req) == ["set", True, "7", "c1", "plug"]


async def test_workers_do_not_inherit_the_servers_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "server-secret")
    monkeypatch.setenv("FNPLATFORM_SECRETS_KEY", "valves-key")
    monkeypatch.setenv("DATABASE_URL", "postgres://user:pw@db/x")
    source = (
        "import os\nclass Pipe:\n    def pipe(self, body):\n"
        "        names = ('SECRET', 'DATABASE', 'KEY')\n"
        "        return sorted(k for k in os.environ if any(n in k for n in names))\n"
    )
    pool = WorkerPool(1, str(tmp_path), limits=Limits(memory_mb=1024))  # started with them set
    try:
        assert await result(pool, request(source)) == []
    finally:
        await pool.stop()


async def test_plugin_exceptions_come_back_with_type_and_traceback(pool):
    source = "class Pipe:\n    def pipe(self, body):\n        raise ValueError('bad input')\n"
    with pytest.raises(PluginFailed) as info:
        await run(pool, request(source))
    assert (str(info.value), info.value.kind) == ("bad input", "ValueError")
    assert "raise ValueError('bad input')" in info.value.trace or "line 3" in info.value.trace


async def test_a_hung_call_is_killed_at_its_deadline_and_the_worker_replaced(pool):
    spin = "class Pipe:\n    def pipe(self, body):\n        while True:\n            pass\n"
    with pytest.raises(CallTimeout, match=r"Function plug exceeded its time limit of 0\.5 s"):
        await run(pool, request(spin), timeout=0.5)
    ok = "class Pipe:\n    def pipe(self, body):\n        return 'alive'\n"
    assert await result(pool, request(ok)) == "alive"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param("import os\n        os._exit(1)", "exited with status 1", id="os-exit"),
        pytest.param(
            "import ctypes\n        ctypes.string_at(0)", "killed by SIGSEGV", id="segfault"
        ),
    ],
)
async def test_a_crashing_worker_fails_only_its_own_calls(pool, body, reason):
    crash = f"class Pipe:\n    def pipe(self, body):\n        {body}\n"
    slow = (
        "import time\nclass Pipe:\n    def pipe(self, body):\n"
        "        time.sleep(0.5)\n        return 'done'\n"
    )
    other = asyncio.create_task(result(pool, request(slow, function_id="other")))
    await asyncio.sleep(0.1)
    with pytest.raises(WorkerCrashed, match=reason):
        await run(pool, request(crash))
    assert await other == "done"
    assert await result(pool, request(slow)) == "done"


async def test_memory_limit_fails_the_call_not_the_server(pool):
    hog = "class Pipe:\n    def pipe(self, body):\n        return len(bytearray(4 * 1024**3))\n"
    with pytest.raises((LimitExceeded, WorkerCrashed), match=r"memory limit of 1024 MB|killed"):
        await run(pool, request(hog))
    ok = "class Pipe:\n    def pipe(self, body):\n        return 'fine'\n"
    assert await result(pool, request(ok)) == "fine"


@pytest.mark.skipif(
    os.geteuid() == 0 and cgroups.pids_base() is None,
    reason="root without a pids cgroup: a fork loop could not be contained",
)
async def test_a_fork_loop_hits_the_process_limit_and_leaves_nothing_behind(tmp_path):
    bomb = (
        "import os\nclass Pipe:\n    def pipe(self, body):\n"
        "        while True:\n            os.fork()\n"
    )
    ok = "class Pipe:\n    def pipe(self, body):\n        return 'fine'\n"
    async with one_worker(tmp_path, memory_mb=1024, processes=16) as pool:
        with pytest.raises(LimitExceeded, match="Function plug hit the limit of 16 processes"):
            await run(pool, request(bomb))
        assert await result(pool, request(ok)) == "fine"
        [worker] = pool.workers  # the worker that hit the limit was replaced
        assert worker.served == 1
        if worker.group is not None:
            # Only the fresh worker: bubblewrap, its pid-1 reaper and the interpreter.
            sandboxed = worker.box is not None and worker.box.sandboxed
            members = cgroups.members(worker.group)
            assert worker.pid in members and len(members) == (3 if sandboxed else 1)


async def test_open_files_and_cpu_time_limits_say_which_limit(tmp_path):
    hoard = (
        "import tempfile\nclass Pipe:\n    def pipe(self, body):\n"
        "        self.files = [tempfile.TemporaryFile() for _ in range(1000)]\n"
    )
    spin = "class Pipe:\n    def pipe(self, body):\n        while True:\n            pass\n"
    async with one_worker(tmp_path, open_files=64, cpu_seconds=3) as pool:
        with pytest.raises(LimitExceeded, match="hit the limit of 64 open files per worker"):
            await run(pool, request(hoard))
        with pytest.raises(WorkerCrashed, match="exceeded its CPU time limit of 3 s"):
            await run(pool, request(spin), timeout=60)


async def test_a_worker_starts_when_the_server_holds_more_files_than_its_limit(tmp_path):
    held = [open(os.devnull) for _ in range(100)]  # noqa: SIM115 - a busy server's descriptors
    ok = "class Pipe:\n    def pipe(self, body):\n        return 'fine'\n"
    try:
        async with one_worker(tmp_path, open_files=64) as pool:
            assert await result(pool, request(ok)) == "fine"
    finally:
        for handle in held:
            handle.close()


async def test_a_worker_that_grew_past_the_recycling_size_is_replaced(tmp_path):
    grow = (
        # A token per process, not its pid: in a sandbox every worker is pid 2.
        "import secrets\nKEEP = []\nTOKEN = secrets.token_hex(8)\nclass Pipe:\n"
        "    def pipe(self, body):\n"
        "        KEEP.append(bytearray(200 * 1024**2))\n        return TOKEN\n"
    )
    async with one_worker(tmp_path, memory_mb=1024, recycle_mb=150) as pool:
        first = await result(pool, request(grow))
        second = await result(pool, request(grow))
        assert first != second  # a fresh worker took the second call
        assert len(pool.workers) == 1


async def test_printing_a_flood_does_not_stall_the_worker(pool):
    flood = (
        "import sys\nclass Pipe:\n    def pipe(self, body):\n"
        "        line = 'x' * 1023 + '\\n'\n        for _ in range(100 * 1024):\n"
        "            sys.stdout.write(line)\n        return 'printed'\n"
    )
    assert await result(pool, request(flood), timeout=60) == "printed"


async def test_a_worker_leaves_when_the_server_goes_even_mid_spin(tmp_path):
    from functions.workers.pool import WorkerProcess

    worker = await WorkerProcess(str(tmp_path)).start()
    spin = "class Pipe:\n    def pipe(self, body):\n        while True:\n            pass\n"
    req = request(spin) | {"id": "spin-1"}
    call = asyncio.create_task(
        anext(worker.call(req, on_event=no_events, on_event_call=no_events, timeout=None))
    )
    await asyncio.sleep(0.5)  # the plugin now spins in a worker thread
    worker._writer.close()  # the server's end of the socket goes away
    assert await asyncio.wait_for(worker.process.wait(), timeout=10) == 0
    call.cancel()
    await worker.stop()


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ({"op": "results", "id": "c0", "items": {}, "failed": []}, "without a valid 'items'"),
        ({"op": "results", "id": "c0", "items": [1]}, "without a valid 'failed'"),
        ({"op": "results", "id": "c0", "items": [1], "failed": [[1, "E", "m"]]}, "outside"),
        ({"op": "results", "id": "c0", "items": [1], "failed": [["0", "E", "m"]]}, "outside"),
        ({"op": "results", "id": "c0", "items": [1], "failed": [[0, "E"]]}, "not [index"),
        ({"op": "results", "id": "c0", "items": [1], "failed": [[0, 1, "m"]]}, "wrong types"),
        ({"op": "chunks", "id": "c0", "items": [], "last": "yes"}, "bad 'last'"),
        ({"op": "items", "id": "c0", "items": []}, "unknown op"),
    ],
)
def test_session_and_stream_messages_of_the_wrong_shape_are_refused(message, problem):
    assert problem in (malformed(message) or "")


def test_session_and_stream_messages_of_the_right_shape_pass():
    assert (
        malformed({"op": "results", "id": "c0", "items": [1, None], "failed": [[1, "E", "m"]]})
        is None
    )
    assert malformed({"op": "chunks", "id": "c0", "items": [], "last": True}) is None


async def test_an_answer_known_at_once_is_one_frame(pool):
    source = "class Pipe:\n    def pipe(self, body):\n        return ['a', 'b']\n"
    messages = await run(pool, request(source, stream=True))
    assert [(m["op"], m.get("last")) for m in messages] == [("chunks", True)]
    assert [item["t"] for item in messages[0]["items"]] == ["a", "b"]


async def test_a_streams_end_comes_with_its_last_items(pool):
    source = "class Pipe:\n    def pipe(self, body):\n        yield 'a'\n        yield 'b'\n"
    messages = await run(pool, request(source, stream=True))
    assert messages[-1]["op"] == "chunks" and messages[-1]["last"] is True
    assert "result" not in [m["op"] for m in messages]
    assert "".join(i["t"] for m in messages for i in m["items"]) == "ab"


async def test_a_stream_that_fails_midway_never_says_it_ended(pool):
    source = (
        "class Pipe:\n    def pipe(self, body):\n        yield 'a'\n"
        "        raise ValueError('broke')\n"
    )
    seen = []
    with pytest.raises(PluginFailed, match="broke"):
        async for message in pool.call(
            request(source, stream=True), on_event=no_events, on_event_call=no_events, timeout=10
        ):
            seen.append(message)
    assert not any(m.get("last") for m in seen)
