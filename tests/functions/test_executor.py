"""The worker executor: workers per function, started on demand, reaped, bounded."""

import asyncio
import os
from dataclasses import replace

import pytest

from functions.services import runtime
from functions.services.context import CallContext
from functions.workers.executor import ProcessExecutor
from functions.workers.pool import CallTimeout, LimitExceeded, Limits, WorkerCrashed, WorkerProcess
from functions.workers.protocol import FrameTooLarge, encode
from tests.support.inline import source_call

# Answers with a mark of the process it runs in (pids repeat across pid namespaces).
PID_PIPE = (
    "import os, sys\n"
    "sys.fnp_mark = getattr(sys, 'fnp_mark', None) or os.urandom(8).hex()\n"
    "class Pipe:\n    def pipe(self, body):\n        return sys.fnp_mark\n"
)


def executor(tmp_path, **options) -> ProcessExecutor:
    defaults = {"timeout": 10, "first_chunk_timeout": 10, "limits": Limits(memory_mb=1024)}
    return ProcessExecutor(source_dir=str(tmp_path), **(defaults | options))


async def answer(process, call) -> str:
    stream = runtime.run_pipe(call, {}, CallContext(user={}), executor=process)
    chunks = [c async for batch in stream for c in batch]
    return "".join(c.text for c in chunks)


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def gone(pid: int | None) -> bool:
    """Whether the process ends within a few seconds (a kill is not instant)."""
    for _ in range(50):
        if not alive(pid):
            return True
        await asyncio.sleep(0.1)
    return False


async def test_each_function_gets_workers_of_its_own_and_a_trust_group_shares(tmp_path):
    process = executor(tmp_path)
    one, two = source_call("one", PID_PIPE), source_call("two", PID_PIPE)
    grouped = [replace(source_call(n, PID_PIPE), group="group:team") for n in ("g1", "g2")]
    try:
        assert await answer(process, one) != await answer(process, two)
        assert await answer(process, grouped[0]) == await answer(process, grouped[1])
        assert set(process.pools()) == {
            ("function:one", None),
            ("function:two", None),
            ("group:team", None),
        }
    finally:
        await process.stop()


async def test_idle_workers_are_stopped_and_start_again_on_the_next_call(tmp_path):
    process = executor(tmp_path, idle_seconds=0.3)
    call = source_call("napper", PID_PIPE)
    try:
        await answer(process, call)
        worker = process.pools()[("function:napper", None)].workers[0]
        for _ in range(50):
            await asyncio.sleep(0.1)
            if not process.pools():
                break
        assert not process.pools() and await gone(worker.pid)
        assert await answer(process, call)  # a fresh worker
    finally:
        await process.stop()


async def test_past_the_cap_the_longest_idle_functions_workers_make_room(tmp_path):
    process = executor(tmp_path, max_pools=2)
    calls = [source_call(name, PID_PIPE) for name in ("a", "b", "c")]
    try:
        for call in calls[:2]:
            await answer(process, call)
        first = process.pools()[("function:a", None)].workers[0]
        await answer(process, calls[2])
        assert set(process.pools()) == {("function:b", None), ("function:c", None)}
        assert await gone(first.pid)
    finally:
        await process.stop()


async def test_a_sync_hook_past_its_deadline_takes_its_worker_with_it(tmp_path):
    process = executor(tmp_path, timeout=0.5)
    spin = "class Pipe:\n    def pipe(self, body):\n        while True:\n            pass\n"
    call = source_call("spin", spin)
    try:
        with pytest.raises(runtime.HookError, match=r"time limit of 0\.5 s"):
            await answer(process, call)
        worker = process.pools()[("function:spin", None)].workers[0]
        assert worker.dead and await gone(worker.pid)
    finally:
        await process.stop()


async def test_an_async_hook_that_lets_go_at_its_deadline_keeps_its_worker(tmp_path):
    process = executor(tmp_path, timeout=0.5)
    nap = "import asyncio\nclass Pipe:\n    async def pipe(self, body):\n"
    nap += "        await asyncio.sleep(30)\n        return 'late'\n"
    call = source_call("nap", nap)
    try:
        with pytest.raises(runtime.HookError, match="time limit"):
            await answer(process, call)
        worker = process.pools()[("function:nap", None)].workers[0]
        assert not worker.dead and alive(worker.pid)
    finally:
        await process.stop()


async def test_a_stream_is_cut_off_at_the_response_limit(tmp_path):
    process = executor(tmp_path, max_response_bytes=10_000)
    forever = "class Pipe:\n    def pipe(self, body):\n        while True:\n"
    forever += "            yield 'x' * 100\n"
    try:
        with pytest.raises(runtime.HookError, match="response limit of 10000 bytes") as info:
            await answer(process, source_call("forever", forever))
        assert isinstance(info.value.error, LimitExceeded)
    finally:
        await process.stop()


async def test_an_oversized_result_is_reported_as_such_not_as_a_timeout(tmp_path):
    process = executor(tmp_path, timeout=20)
    big = "class Pipe:\n    def pipe(self, body):\n        return 'x' * (70 * 1024 * 1024)\n"
    try:
        with pytest.raises(runtime.HookError, match="over the 64 MB limit") as info:
            await answer(process, source_call("big", big))
        assert not isinstance(info.value.error, CallTimeout)
    finally:
        await process.stop()


def test_a_frame_over_the_limit_is_refused_by_its_sender():
    with pytest.raises(FrameTooLarge, match="over the 64 MB limit"):
        encode({"op": "result", "value": "x" * (65 * 1024 * 1024)})


async def test_host_requests_need_the_token_of_a_call_in_progress(tmp_path):
    connection = WorkerProcess(str(tmp_path))

    async def handler(name, args, kwargs):
        return "served"

    connection.host_handlers["the-token"] = handler
    request = {"name": "x", "args": [], "kwargs": {}}
    assert (await connection.answer_host(request | {"call": "the-token"}))["value"] == "served"
    for forged in ("c0", "", None, "the-token "):
        refused = await connection.answer_host(request | {"call": forged})
        assert not refused["ok"] and "refused" in refused["error"]


async def test_a_completion_starts_its_functions_workers_together(tmp_path):
    process = executor(tmp_path)
    calls = [source_call(name, PID_PIPE) for name in ("w1", "w2", "w3")]
    try:
        await process.warm(calls)
        pools = process.pools()
        assert all(pools[(c.group, None)].workers for c in calls)
        await process.warm(calls)  # already warm: nothing new starts
        assert len(process.pools()) == 3
    finally:
        await process.stop()


async def test_events_are_counted_and_share_the_byte_budget(tmp_path):
    many = (
        "class Pipe:\n    async def pipe(self, body, __event_emitter__):\n"
        "        for i in range(1000):\n"
        "            await __event_emitter__({'type': 'status', 'data': {'description': str(i)}})\n"
        "        return 'done'\n"
    )
    big = (
        "class Pipe:\n    async def pipe(self, body, __event_emitter__):\n"
        "        for i in range(10):\n"
        "            await __event_emitter__({'type': 'x', 'data': 'A' * 5000})\n"
        "        return 'done'\n"
    )
    process = executor(tmp_path, max_events=100, max_response_bytes=20_000)
    try:
        with pytest.raises(runtime.HookError, match="limit of 100 events per call"):
            await answer(process, source_call("chatty", many))
        with pytest.raises(runtime.HookError, match="response limit of 20000 bytes"):
            await answer(process, source_call("loud", big))
        assert await answer(process, source_call("fine", PID_PIPE))
    finally:
        await process.stop()


async def test_a_plugin_writing_on_its_workers_socket_ends_only_that_worker(tmp_path):
    forger = (
        "import os, socket, struct, sys\nimport msgpack\n"
        "class Pipe:\n    def pipe(self, body):\n"
        "        sock = socket.socket(fileno=os.dup(int(sys.argv[1])))\n"
        "        frame = msgpack.packb({'op': 'chunks', 'id': 'c0', 'items': 5})\n"
        "        sock.sendall(struct.pack('!I', len(frame)) + frame)\n"
        "        import time\n        time.sleep(5)\n"
    )
    process = executor(tmp_path)
    try:
        with pytest.raises(runtime.HookError, match="malformed message"):
            await answer(process, source_call("forger", forger))
        assert await answer(process, source_call("bystander", PID_PIPE))
    finally:
        await process.stop()


async def test_concurrent_calls_on_a_fresh_worker_share_one_load(tmp_path):
    slow_import = (
        "import time\ntime.sleep(0.5)\nfrom pydantic import BaseModel\n"
        "class Pipe:\n    class Valves(BaseModel):\n        N: int = 1\n"
        "    def pipe(self, body):\n        return 'ok'\n"
    )
    process = executor(tmp_path)
    call = source_call("slowload", slow_import)
    try:
        answers = await asyncio.gather(
            process.valves(call, "Valves", values={"N": 2}),
            process.valves(call, "Valves", values={"N": 3}),
            answer(process, call),
        )
        assert answers == [{"data": {"N": 2}}, {"data": {"N": 3}}, "ok"]
    finally:
        await process.stop()


async def test_rolling_back_to_code_a_worker_saw_before_works(tmp_path):
    process = executor(tmp_path)
    v1 = source_call("flip", "class Pipe:\n    def pipe(self, body):\n        return 'one'\n")
    v2 = source_call("flip", "class Pipe:\n    def pipe(self, body):\n        return 'two'\n")
    try:
        assert [await answer(process, c) for c in (v1, v2, v1, v2)] == ["one", "two"] * 2
    finally:
        await process.stop()


async def test_one_hang_is_recorded_once_not_once_per_call_it_took_down(
    tmp_path, alice, transactional_db
):
    from asgiref.sync import sync_to_async

    from functions.models import FunctionHealth
    from functions.services.functions import function_create

    source = (
        "import time\nclass Pipe:\n    def pipe(self, body):\n"
        "        if body.get('spin'):\n            while True:\n                pass\n"
        "        time.sleep(30)\n"
    )
    await sync_to_async(function_create)(user=alice, id="hangs", content=source)
    process = executor(tmp_path, timeout=1.0)
    call = source_call("hangs", source)

    async def run(body):
        stream = runtime.run_pipe(call, body, CallContext(user={}), executor=process)
        with pytest.raises(runtime.HookError) as info:
            async for _ in stream:
                pass
        return info.value.error

    try:
        spun, slept = await asyncio.gather(run({"spin": True}), run({}))
    finally:
        await process.stop()
    assert isinstance(spun, CallTimeout) or isinstance(slept, CallTimeout)
    health = await FunctionHealth.objects.aget(function_id="hangs")
    assert [f["kind"] for f in health.failures].count("timeout") >= 1
    assert "crash" not in [f["kind"] for f in health.failures]
    assert not health.is_quarantined


async def test_a_worker_that_cannot_start_leaves_nothing_behind(tmp_path):
    import glob
    import tempfile

    from functions.workers import cgroups
    from functions.workers.pool import WorkerCrashed
    from functions.workers.sandbox import SCRATCH_PREFIX

    pattern = f"{tempfile.gettempdir()}/{SCRATCH_PREFIX}{os.getpid()}-*"
    scratch_before = set(glob.glob(pattern))
    base = cgroups.pids_base()
    groups_before = set(base.iterdir()) if base else set()
    worker = WorkerProcess(str(tmp_path), Limits(memory_mb=1024), python="/nonexistent/python")
    with pytest.raises((WorkerCrashed, OSError)):
        await worker.start()
    assert set(glob.glob(pattern)) == scratch_before
    if base:
        assert set(base.iterdir()) == groups_before


async def test_a_call_its_caller_left_takes_its_spinning_thread_with_it(tmp_path):
    process = executor(tmp_path, timeout=60)
    spin = "class Pipe:\n    def pipe(self, body):\n        while True:\n            pass\n"
    call = source_call("left", spin)
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(answer(process, call), 1.0)  # the client goes away
        worker = process.pools()[("function:left", None)].workers[0]
        assert await gone(worker.pid)
    finally:
        await process.stop()


# Stream-hook sessions: one worker call for a filter's stream hook over one answer

SEEN = (
    "import os, time\nclass Filter:\n    def stream(self, event):\n"
    "        if event.get('crash'):\n            os._exit(3)\n"
    "        if event.get('slow'):\n            time.sleep(30)\n"
    "        return event | {'seen': True}\n"
)


async def one_by_one(*events, pause: float = 0.0):
    for index, event in enumerate(events):
        if pause and index:
            await asyncio.sleep(pause)  # the pipe is slow to produce the next chunk
        yield [event]


def quiet_context(recorder=None):
    from functions.services.events import EventRecorder

    recorder = recorder or EventRecorder()
    return CallContext(user={}, event_emitter=recorder.emit)


async def test_a_crash_mid_session_fails_it_with_the_crash(tmp_path):
    process = executor(tmp_path)
    call = source_call("crashy", SEEN)
    events = [{"n": 0}, {"n": 1}, {"n": 2, "crash": True}, {"n": 3}]
    answers: list = []
    try:
        with pytest.raises(WorkerCrashed, match="exited with status 3"):
            async for batch in process.filter_stream(call, one_by_one(*events), quiet_context()):
                answers.append(batch)
        assert answers == [[{"n": 0, "seen": True}], [{"n": 1, "seen": True}]]
        again = process.filter_stream(call, one_by_one({"n": 9}), quiet_context())
        assert [b async for b in again] == [[{"n": 9, "seen": True}]]  # a fresh worker
    finally:
        await process.stop()


async def test_a_failed_session_is_reported_once_and_the_rest_passes_unchanged(tmp_path):
    from functions.services.events import EventRecorder

    process = executor(tmp_path)
    recorder = EventRecorder()
    first_out = asyncio.Event()

    async def answer():
        yield [{"n": 0}]
        await first_out.wait()  # so the crash comes in a batch of its own
        yield [{"n": 1, "crash": True}]
        yield [{"n": 2}]

    out = []
    try:
        stream = runtime.stream_through(
            [source_call("crashy", SEEN)], answer(), quiet_context(recorder), executor=process
        )
        async for batch in stream:
            out.extend(batch)
            first_out.set()
    finally:
        await process.stop()
    assert out == [{"n": 0, "seen": True}, {"n": 1, "crash": True}, {"n": 2}]
    warnings = [e.data["content"] for e in recorder.events if e.type == "notification"]
    assert len(warnings) == 1 and "exited with status 3" in warnings[0]


async def test_each_batch_has_the_call_timeout_and_waiting_for_input_does_not_count(tmp_path):
    process = executor(tmp_path, timeout=1)
    call = source_call("slowpoke", SEEN)
    events = [{"n": 0}, {"n": 1}, {"n": 2, "slow": True}]
    answers: list = []
    try:
        with pytest.raises(CallTimeout, match=r"time limit of 1 s"):
            stream = process.filter_stream(call, one_by_one(*events, pause=1.5), quiet_context())
            async for batch in stream:
                answers.append(batch)
        assert answers == [[{"n": 0, "seen": True}], [{"n": 1, "seen": True}]]
        worker = process.pools()[("function:slowpoke", None)].workers[0]
        assert worker.dead and await gone(worker.pid)  # its thread would not let go
    finally:
        await process.stop()


async def test_a_session_left_with_a_spinning_hook_takes_its_worker_with_it(tmp_path):
    process = executor(tmp_path, timeout=60)
    call = source_call("left", SEEN)
    try:
        answers = process.filter_stream(call, one_by_one({"slow": True}), quiet_context())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(answers), 1.0)  # the client goes away
        await answers.aclose()
        worker = process.pools()[("function:left", None)].workers[0]
        assert await gone(worker.pid)
    finally:
        await process.stop()


async def test_a_sessions_answers_count_against_the_response_limit(tmp_path):
    process = executor(tmp_path, max_response_bytes=10_000)
    pad = "class Filter:\n    def stream(self, event):\n        return {'pad': 'x' * 1000}\n"
    events = [{"n": n} for n in range(50)]
    try:
        with pytest.raises(LimitExceeded, match="response limit of 10000 bytes"):
            async for _ in process.filter_stream(
                source_call("pad", pad), one_by_one(*events), quiet_context()
            ):
                pass
    finally:
        await process.stop()


async def test_a_stream_hook_emitting_forever_is_stopped_at_its_batchs_deadline(tmp_path):
    process = executor(tmp_path, timeout=1)
    chatty = (
        "class Filter:\n    async def stream(self, event, __event_emitter__):\n"
        "        while True:\n"
        "            await __event_emitter__({'type': 'status', 'data': {}})\n"
    )
    try:
        with pytest.raises(CallTimeout, match=r"time limit of 1 s"):
            async for _ in process.filter_stream(
                source_call("chatty", chatty), one_by_one({"n": 0}), quiet_context()
            ):
                pass
    finally:
        await process.stop()


async def test_a_session_answer_that_matches_no_batch_ends_only_that_worker(tmp_path):
    forger = (
        "import os, socket, struct, sys\nimport msgpack\n"
        "class Filter:\n    def stream(self, event):\n"
        "        sock = socket.socket(fileno=os.dup(int(sys.argv[1])))\n"
        "        answer = {'op': 'results', 'id': 'c0', 'items': [1, 2, 3], 'failed': []}\n"
        "        frame = msgpack.packb(answer)\n"
        "        sock.sendall(struct.pack('!I', len(frame)) + frame)\n"
        "        return event\n"
    )
    process = executor(tmp_path)
    try:
        with pytest.raises(WorkerCrashed, match="matches no batch"):
            async for _ in process.filter_stream(
                source_call("forger", forger), one_by_one({"n": 0}), quiet_context()
            ):
                pass
        assert await answer(process, source_call("bystander", PID_PIPE))
    finally:
        await process.stop()


async def test_a_session_left_midway_through_a_sync_batch_keeps_its_worker(tmp_path):
    process = executor(tmp_path, timeout=60)
    nap = (
        "import time\nclass Filter:\n    def stream(self, event):\n"
        "        time.sleep(0.05)\n        return event\n"
    )
    call = source_call("napper", nap)
    try:
        # Its worker is up first: the half second below is spent in the batch, however
        # slowly a loaded machine starts a sandbox.
        await process.warm([call])
        answers = process.filter_stream(
            call, batches_of([{"n": n} for n in range(40)]), quiet_context()
        )
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(answers), 0.5)  # the client leaves mid-batch
        await answers.aclose()
        worker = process.pools()[("function:napper", None)].workers[0]
        await asyncio.sleep(1.5)  # the worker stops the batch after its current event
        assert not worker.dead and not worker.retiring and alive(worker.pid)
        again = process.filter_stream(call, one_by_one({"n": 0}), quiet_context())
        assert [b async for b in again] == [[{"n": 0}]]
        assert process.pools()[("function:napper", None)].workers == [worker]
    finally:
        await process.stop()


async def batches_of(*batches):
    for batch in batches:
        yield batch
