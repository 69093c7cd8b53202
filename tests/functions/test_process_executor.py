"""The runtime's contract, run on the process executor (hooks in worker processes)."""

import pytest

from functions.services import runtime
from functions.services.context import CallContext
from functions.services.events import EventRecorder
from functions.services.runtime import FilterAbort, HookError
from functions.workers.executor import ProcessExecutor
from functions.workers.pool import Limits
from tests.support.inline import source_call


@pytest.fixture
async def executor(tmp_path):
    process = ProcessExecutor(
        size=2,
        source_dir=str(tmp_path),
        limits=Limits(memory_mb=1024),
        timeout=5,
        first_chunk_timeout=5,
    )
    yield process
    await process.stop()


def ctx(recorder: EventRecorder | None = None) -> CallContext:
    recorder = recorder or EventRecorder()
    return CallContext(
        user={"id": "7", "name": "bob", "role": "user"},
        event_emitter=recorder.emit,
        event_call=recorder.call,
    )


async def answer(executor, source: str, **valves) -> str:
    stream = runtime.run_pipe(
        source_call("p", source, **valves), {"messages": []}, ctx(), executor=executor
    )
    chunks = [c async for batch in stream for c in batch]
    return "".join(
        c.text or (c.data or {}).get("choices", [{}])[0].get("delta", {}).get("content", "")
        for c in chunks
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            "class Pipe:\n    def pipe(self, body):\n        return 'plain'\n", "plain", id="str"
        ),
        pytest.param(
            "class Pipe:\n    def pipe(self, body):\n        yield 'a'\n        yield 'b'\n",
            "ab",
            id="sync-generator",
        ),
        pytest.param(
            "class Pipe:\n    async def pipe(self, body):\n        yield 'x'\n"
            "        yield {'choices': [{'delta': {'content': 'y'}}]}\n",
            "xy",
            id="async-generator",
        ),
        pytest.param(
            "class Pipe:\n    def pipe(self, body):\n"
            '        return iter([b\'data: {"choices": [{"delta": {"content": "s"}}]}\','
            " b'', b'data: [DONE]'])\n",
            "s",
            id="sse-bytes",
        ),
    ],
)
async def test_pipe_return_types(executor, source, expected):
    assert await answer(executor, source) == expected


async def test_valves_reach_the_worker(executor):
    source = (
        "from pydantic import BaseModel, SecretStr\nclass Pipe:\n"
        "    class Valves(BaseModel):\n        KEY: SecretStr = SecretStr('')\n"
        "    def pipe(self, body):\n        return self.valves.KEY.get_secret_value()\n"
    )
    assert await answer(executor, source, KEY="sk-123") == "sk-123"


async def test_filters_in_priority_order_and_inlet_abort(executor):
    def source(name: str, priority: int, fail: bool = False) -> str:
        raise_line = "        raise Exception('blocked by policy')\n" if fail else ""
        return (
            "from pydantic import BaseModel\nclass Filter:\n"
            f"    class Valves(BaseModel):\n        priority: int = {priority}\n"
            "    def inlet(self, body):\n"
            + raise_line
            + f"        body['seen'] = body.get('seen', []) + ['{name}']\n        return body\n"
            "    async def stream(self, event):\n"
            f"        event['by'] = event.get('by', []) + ['{name}']\n        return event\n"
        )

    filters = [source_call(n, source(n, p), priority=p) for n, p in (("b", 2), ("a", 1))]
    body = await runtime.apply_inlet(filters, {}, ctx(), executor=executor)
    assert body["seen"] == ["a", "b"]
    event = await runtime.apply_stream(filters, {}, ctx(), executor=executor)
    assert event["by"] == ["a", "b"]
    with pytest.raises(FilterAbort) as info:
        await runtime.apply_inlet(
            [source_call("guard", source("guard", 0, True))], {}, ctx(), executor=executor
        )
    assert info.value.message == "blocked by policy"


async def test_actions_events_and_html(executor):
    from functions.services.plugin_contract import html_of

    source = (
        "class HTMLResponse:\n    media_type = 'text/html'\n"
        "    def __init__(self, body):\n        self.body = body.encode()\n"
        "class Action:\n    async def action(self, body, __event_emitter__, __id__):\n"
        "        await __event_emitter__({'type': 'status', 'data': {'description': __id__}})\n"
        "        return HTMLResponse('<i>hi</i>')\n"
    )
    recorder = EventRecorder()
    call = source_call("act", source)
    result = await runtime.run_action(call, {}, ctx(recorder), sub_id="sub", executor=executor)
    assert html_of(result) == "<i>hi</i>"  # the action door turns it into an embed
    assert recorder.events[0].data["description"] == "sub"


async def test_a_hung_pipe_fails_with_the_limit_named(tmp_path):
    process = ProcessExecutor(
        size=1, source_dir=str(tmp_path), limits=Limits(), timeout=30, first_chunk_timeout=0.5
    )
    try:
        spin = "class Pipe:\n    def pipe(self, body):\n        while True:\n            pass\n"
        with pytest.raises(HookError, match=r"first-chunk time limit of 0\.5 s"):
            await answer(process, spin)
        assert (
            await answer(process, "class Pipe:\n    def pipe(self, body):\n        return 'ok'\n")
            == "ok"
        )
    finally:
        await process.stop()


async def test_a_per_function_cap_queues_excess_calls_without_blocking_others(tmp_path):
    import asyncio

    process = ProcessExecutor(
        size=2,
        source_dir=str(tmp_path),
        limits=Limits(),
        timeout=30,
        first_chunk_timeout=30,
        max_concurrency=1,
    )
    slow = (
        "import time\nclass Pipe:\n    def pipe(self, body):\n"
        "        time.sleep(0.6)\n        return 's'\n"
    )
    quick = "class Pipe:\n    def pipe(self, body):\n        return 'q'\n"
    finished: list[str] = []

    async def run(name: str, source: str) -> None:
        stream = runtime.run_pipe(source_call(name, source), {}, ctx(), executor=process)
        chunks = [c async for batch in stream for c in batch]
        finished.append(f"{name}:{''.join(c.text for c in chunks)}")

    try:
        first = asyncio.create_task(run("slow", slow))
        await asyncio.sleep(0.2)
        second = asyncio.create_task(run("slow", slow))  # queued behind the first
        await asyncio.sleep(0.05)
        assert process.cap("slow").locked() and len(process.cap("slow")._waiters) == 1
        await run("quick", quick)  # another function is not held up by the cap
        assert finished == ["quick:q"]
        await asyncio.gather(first, second)
        assert finished == ["quick:q", "slow:s", "slow:s"]
        assert process.cap("slow")._value == 1
    finally:
        await process.stop()
