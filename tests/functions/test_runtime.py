"""The runtime contract, exercised on real plugin classes (no mocks)."""

import asyncio
import contextlib
import dataclasses
import json
import threading
import time

import pytest
from pydantic import BaseModel

from functions.services import runtime
from functions.services.context import CallContext
from functions.services.events import EventRecorder
from functions.services.runtime import Chunk, FilterAbort, HookError
from functions.workers.executor import InlineExecutor
from tests.support.inline import object_call, seed_worker


@pytest.fixture(autouse=True)
def _plugin_objects(monkeypatch):
    seed_worker(monkeypatch)


def ctx(**overrides) -> CallContext:
    return CallContext(user={"id": "1", "name": "bob", "role": "user"}, **overrides)


async def collect(call, body=None, context=None) -> list[Chunk]:
    stream = runtime.run_pipe(call, body or {"messages": []}, context or ctx())
    return [c async for batch in stream for c in batch]


def texts(chunks: list[Chunk]) -> str:
    return "".join(c.text for c in chunks)


def pipe_returning(value_factory, *, sync=True):
    class Pipe:
        def pipe(self, body):
            return value_factory()

    class AsyncPipe:
        async def pipe(self, body):
            return value_factory()

    return object_call("p", (Pipe if sync else AsyncPipe)())


def sse(text: str) -> str:
    chunk = {"choices": [{"delta": {"content": text}}]}
    return f"data: {json.dumps(chunk)}"


class FakeStreamingResponse:
    """Shaped like starlette's StreamingResponse: only body_iterator matters."""

    def __init__(self, body_iterator):
        self.body_iterator = body_iterator


def split_bytes():
    blob = (sse("he") + "\n\n" + sse("llo") + "\n\ndata: [DONE]\n\n").encode()
    return [blob[i : i + 7] for i in range(0, len(blob), 7)]


async def agen_split():
    for piece in split_bytes():
        yield piece


def sync_gen():
    yield "a"
    yield "b"


async def async_gen():
    yield "a"
    yield {"choices": [{"delta": {"content": "b"}}]}


class Answer(BaseModel):
    id: str = "x"
    object: str = "chat.completion"


@pytest.mark.parametrize(
    ("factory", "sync", "expected_text", "expected_data"),
    [
        pytest.param(lambda: "hello", True, "hello", 0, id="str"),
        pytest.param(lambda: "hello", False, "hello", 0, id="str-async"),
        pytest.param(lambda: {"choices": [{"message": {"content": "x"}}]}, True, "", 1, id="dict"),
        pytest.param(lambda: Answer(), True, "", 1, id="pydantic"),
        pytest.param(sync_gen, True, "ab", 0, id="sync-generator"),
        pytest.param(async_gen, False, "a", 1, id="async-generator"),
        pytest.param(
            lambda: iter([b'data: {"a": 1}', b"", b"data: [DONE]"]),
            True,
            "",
            1,
            id="sse-bytes-lines",
        ),
        pytest.param(lambda: (sse(w) for w in ["x", "y"]), True, "", 2, id="sse-strings"),
        pytest.param(
            lambda: FakeStreamingResponse(iter(split_bytes())), True, "", 2, id="streaming-response"
        ),
        pytest.param(
            lambda: FakeStreamingResponse(agen_split()), True, "", 2, id="streaming-response-async"
        ),
        pytest.param(lambda: ["a", "b"], True, "ab", 0, id="list"),
        pytest.param(lambda: None, True, "", 0, id="none"),
    ],
)
async def test_every_pipe_return_type_becomes_chunks(factory, sync, expected_text, expected_data):
    chunks = await collect(pipe_returning(factory, sync=sync))
    assert texts(chunks) == expected_text
    assert len([c for c in chunks if c.data is not None]) == expected_data


async def test_streaming_response_chunks_are_reassembled_across_splits():
    chunks = await collect(pipe_returning(lambda: FakeStreamingResponse(iter(split_bytes()))))
    contents = [c.data["choices"][0]["delta"]["content"] for c in chunks if c.data]
    assert contents == ["he", "llo"]
    assert chunks[-1].done


async def test_first_chunk_arrives_before_the_pipe_finishes():
    release = asyncio.Event()

    class Pipe:
        async def pipe(self, body):
            yield "first"
            await release.wait()
            yield "second"

    stream = runtime.run_pipe(object_call("p", Pipe()), {}, ctx())
    first = await anext(stream)
    assert [c.text for c in first] == ["first"]
    release.set()
    assert [c.text for c in await anext(stream)] == ["second"]


async def test_sync_generator_is_stepped_off_the_loop():
    loop_thread = threading.get_ident()
    seen = []

    class Pipe:
        def pipe(self, body):
            def gen():
                for word in ["a", "b"]:
                    seen.append(threading.get_ident())
                    yield word

            return gen()

    assert texts(await collect(object_call("p", Pipe()))) == "ab"
    assert seen and loop_thread not in seen


async def test_sync_hooks_do_not_block_a_concurrent_call():
    finished = []

    class Slow:
        def pipe(self, body):
            time.sleep(0.5)
            finished.append("slow")
            return "slow"

    class Quick:
        async def pipe(self, body):
            finished.append("quick")
            return "quick"

    slow = asyncio.create_task(collect(object_call("slow", Slow())))
    await asyncio.sleep(0.05)  # the slow pipe is now sleeping in its thread
    assert texts(await collect(object_call("quick", Quick()))) == "quick"
    assert finished == ["quick"]
    await slow
    assert finished == ["quick", "slow"]


async def test_concurrent_calls_get_their_own_valves():
    class Pipe:
        class Valves(BaseModel):
            NAME: str = "default"

        def __init__(self):
            self.valves = self.Valves()

        def pipe(self, body):
            time.sleep(0.1)  # both calls overlap here
            return self.valves.NAME

    shared = Pipe()
    calls = [object_call("p", shared, valves=Pipe.Valves(NAME=n)) for n in ("one", "two")]
    results = await asyncio.gather(*(collect(c) for c in calls))
    assert [texts(r) for r in results] == ["one", "two"]
    assert shared.valves.NAME == "default"


async def test_errors_mid_stream_name_the_function():
    class Pipe:
        async def pipe(self, body):
            yield "partial"
            raise RuntimeError("model went away")

    with pytest.raises(HookError) as info:
        await collect(object_call("flaky", Pipe()))
    assert info.value.function_id == "flaky"
    assert info.value.message == "model went away"


async def test_data_argument_passed_positionally_when_named_differently():
    class Pipe:
        def pipe(self, payload):
            return payload["x"]

    assert texts(await collect(object_call("p", Pipe()), {"x": "ok"})) == "ok"


def make_filter(name: str, priority: int, log: list, *, user_valves=None, fail=None):
    class Filter:
        class Valves(BaseModel):
            priority: int = 0

        def inlet(self, body, __user__):
            log.append((name, "inlet", "valves" in __user__))
            if fail == "inlet":
                raise ValueError(f"{name} says no")
            body["seen"] = [*body.get("seen", []), name]
            return body

        async def stream(self, event):
            log.append((name, "stream"))
            if fail == "stream":
                raise ValueError("stream broke")
            if event.get("drop"):
                return None
            return event | {"by": [*event.get("by", []), name]}

        def outlet(self, body):
            log.append((name, "outlet"))
            if fail == "outlet":
                raise ValueError("outlet broke")
            return body

    if user_valves is not None:
        Filter.UserValves = type(user_valves)
    return object_call(
        name, Filter(), valves=Filter.Valves(priority=priority), user_valves=user_valves
    )


async def test_filters_run_by_priority_then_id_for_every_hook():
    log: list = []
    filters = [make_filter("b", 1, log), make_filter("c", 0, log), make_filter("a", 1, log)]
    body = await runtime.apply_inlet(filters, {}, ctx())
    assert body["seen"] == ["c", "a", "b"]
    event = await runtime.apply_stream(filters, {}, ctx())
    assert event["by"] == ["c", "a", "b"]
    await runtime.apply_outlet(filters, {}, ctx())
    assert [entry[0] for entry in log if entry[1] == "outlet"] == ["c", "a", "b"]


async def test_inlet_exception_aborts_with_the_plugins_message():
    log: list = []
    filters = [make_filter("guard", 0, log, fail="inlet"), make_filter("later", 1, log)]
    with pytest.raises(FilterAbort) as info:
        await runtime.apply_inlet(filters, {}, ctx())
    assert (info.value.function_id, info.value.message) == ("guard", "guard says no")
    assert ("later", "inlet", False) not in log


async def test_stream_filter_may_drop_a_chunk():
    assert await runtime.apply_stream([make_filter("f", 0, [])], {"drop": True}, ctx()) is None


async def test_failing_stream_and_outlet_hooks_are_reported_as_warnings():
    recorder = EventRecorder()
    context = ctx(event_emitter=recorder.emit)
    filters = [make_filter("s", 0, [], fail="stream"), make_filter("t", 1, [])]
    event = await runtime.apply_stream(filters, {"n": 1}, context)
    assert event == {"n": 1, "by": ["t"]}
    await runtime.apply_outlet([make_filter("o", 0, [], fail="outlet")], {}, context)
    warnings = [e.data["content"] for e in recorder.events if e.type == "notification"]
    assert warnings == [
        "Filter s failed in stream: stream broke",
        "Filter o failed in outlet: outlet broke",
    ]


async def test_user_valves_do_not_leak_between_filters():
    class UV(BaseModel):
        secret: str = "mine"

    log: list = []
    filters = [make_filter("with", 0, log, user_valves=UV()), make_filter("without", 1, log)]
    await runtime.apply_inlet(filters, {}, ctx())
    assert ("with", "inlet", True) in log and ("without", "inlet", False) in log


async def test_action_gets_its_sub_id():
    class Action:
        async def action(self, body, __id__=None, __event_emitter__=None):
            await __event_emitter__({"type": "status", "data": {"description": "working"}})
            return {"id": __id__, "message": body["id"]}

    recorder = EventRecorder()
    call = object_call("multi", Action())
    result = await runtime.run_action(
        call, {"id": "m1"}, ctx(event_emitter=recorder.emit), sub_id="translate"
    )
    assert result == {"id": "translate", "message": "m1"}
    assert recorder.events[0].type == "status"


async def test_failing_action_raises_hook_error():
    class Action:
        def action(self, body):
            raise KeyError("nope")

    with pytest.raises(HookError, match=r"broken\.action"):
        await runtime.run_action(object_call("broken", Action()), {}, ctx())


def test_a_hook_error_names_its_function_once():
    from functions.services.executor import CallTimeout

    timeout = HookError("slow", "pipe", CallTimeout("Function slow exceeded its time limit of 8 s"))
    assert timeout.described == "Function slow exceeded its time limit of 8 s"
    raised = HookError("flaky", "pipe", ValueError("model went away"))
    assert raised.described == "Function flaky failed: model went away"


# Provable no-ops (LoadReport.noop_hooks) are never called


class CountingExecutor(InlineExecutor):
    """The inline executor, keeping the hook calls it is handed."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, str]] = []

    async def invoke(self, call, hook, data, context, **options):
        self.calls.append((call.function_id, hook))
        return await super().invoke(call, hook, data, context, **options)


@pytest.fixture
async def counting():
    executor = CountingExecutor.from_settings()
    yield executor
    await executor.stop()


class Stubs:
    """Community-style stubs: every hook provably does nothing."""

    def inlet(self, body: dict, __user__: dict | None = None) -> dict:
        return body

    def stream(self, event: dict) -> dict:
        """Pass through."""
        return event

    async def outlet(self, body):
        pass


class Marks:
    def inlet(self, body):
        return body | {"inlet": "marks"}

    def stream(self, event):
        return event | {"stream": "marks"}

    async def outlet(self, body):
        body["outlet"] = "marks"
        return body


def called_anyway(call):
    """The same plugin with no hook known to be a no-op: every hook is called."""
    return dataclasses.replace(call, report=dataclasses.replace(call.report, noop_hooks=[]))


async def fold(filters, executor):
    return (
        await runtime.apply_inlet(filters, {"messages": []}, ctx(), executor=executor),
        await runtime.apply_stream(filters, {"n": 1}, ctx(), executor=executor),
        await runtime.apply_outlet(filters, {"messages": []}, ctx(), executor=executor),
    )


async def test_no_op_hooks_are_never_called_and_the_others_are(counting):
    stubs, marks = object_call("stubs", Stubs()), object_call("marks", Marks())
    assert stubs.report.noop_hooks == ["inlet", "stream", "outlet"]
    assert marks.report.noop_hooks == []
    assert all(stubs.has_hook(hook) for hook in ("inlet", "stream", "outlet"))

    skipped = await fold([stubs, marks], counting)

    assert counting.calls == [("marks", "inlet"), ("marks", "stream"), ("marks", "outlet")]
    assert ("function:stubs", None) not in counting.pools()  # its worker never started
    assert skipped == (
        {"messages": [], "inlet": "marks"},
        {"n": 1, "stream": "marks"},
        {"messages": [], "outlet": "marks"},
    )
    # Skipping them is unobservable: called, they give the same answers.
    counting.calls.clear()
    assert await fold([called_anyway(stubs), marks], counting) == skipped
    assert [name for name, _ in counting.calls].count("stubs") == 3


async def test_a_no_op_stream_hook_still_drops_an_empty_event(counting):
    stubs = object_call("stubs", Stubs())
    assert await runtime.apply_stream([stubs], {}, ctx(), executor=counting) is None
    assert counting.calls == [("stubs", "stream")]


async def test_a_no_op_hook_is_skipped_for_html_shaped_data_too(counting):
    # The worker hands plain dicts back as they are: {"__html__": x} included.
    stubs = object_call("stubs", Stubs())
    event = await runtime.apply_stream([stubs], {"__html__": 5}, ctx(), executor=counting)
    assert event == {"__html__": 5}
    assert counting.calls == []
    assert await runtime.apply_stream([called_anyway(stubs)], {"__html__": 5}, ctx()) == event


async def test_a_report_without_no_op_hooks_calls_every_hook(counting):
    from functions.services.loader import LoadReport

    stubs = object_call("stubs", Stubs())
    stored = stubs.report.as_dict()
    del stored["noop_hooks"]
    old = dataclasses.replace(stubs, report=LoadReport.from_dict(stored))
    await fold([old], counting)
    assert counting.calls == [("stubs", "inlet"), ("stubs", "stream"), ("stubs", "outlet")]


# A stream through the filters' stream hooks: one session per filter


async def batches_of(*batches):
    for batch in batches:
        yield batch


async def through(filters, *batches, context=None) -> list[list[dict]]:
    stream = runtime.stream_through(filters, batches_of(*batches), context or ctx())
    return [batch async for batch in stream]


def flat(batches: list[list[dict]]) -> list[dict]:
    return [event for batch in batches for event in batch]


async def until(condition, seconds: float = 10.0) -> None:
    """Wait (untimed) for something another task does."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


async def test_a_stream_passes_every_stream_filter_in_order():
    filters = [make_filter("b", 1, []), make_filter("c", 0, []), make_filter("a", 1, [])]
    events = flat(await through(filters, [{"n": 1}, {"n": 2}], [{"n": 3}]))
    assert [e["n"] for e in events] == [1, 2, 3]
    assert all(e["by"] == ["c", "a", "b"] for e in events)


async def test_a_stream_filter_drops_falsy_results_and_empty_batches():
    drop = make_filter("f", 0, [])
    assert flat(await through([drop], [{"n": 1, "drop": True}, {"n": 2}])) == [
        {"n": 2, "by": ["f"]}
    ]
    assert await through([drop], [{"drop": True}], [{"drop": True}]) == []


async def test_an_event_whose_hook_raised_is_reported_and_passed_on_unchanged():
    threads: list[int] = []

    class Picky:
        def stream(self, event):  # sync: each batch runs in a worker thread
            threads.append(threading.get_ident())
            if event.get("bad"):
                raise ValueError(f"bad event {event['n']}")
            return event | {"ok": True}

    recorder = EventRecorder()
    filters = [object_call("picky", Picky()), make_filter("after", 1, [])]
    events = flat(
        await through(
            filters,
            [{"n": 1}, {"n": 2, "bad": True}],
            [{"n": 3}],
            context=ctx(event_emitter=recorder.emit),
        )
    )
    assert events == [
        {"n": 1, "ok": True, "by": ["after"]},
        {"n": 2, "bad": True, "by": ["after"]},
        {"n": 3, "ok": True, "by": ["after"]},
    ]
    warnings = [e.data["content"] for e in recorder.events if e.type == "notification"]
    assert warnings == ["Filter picky failed in stream: bad event 2"]
    assert threads and threading.get_ident() not in threads


async def test_a_filtered_stream_lets_its_first_batch_out_before_the_pipe_goes_on():
    release = asyncio.Event()

    class Pipe:
        async def pipe(self, body):
            yield "first"
            await release.wait()
            yield "second"

    async def events(batches):
        async for batch in batches:
            yield [{"content": chunk.text} for chunk in batch]

    filters = [make_filter(f"f{n}", n, []) for n in range(5)]
    answer = runtime.run_pipe(object_call("p", Pipe()), {}, ctx())
    stream = runtime.stream_through(filters, events(answer), ctx())
    first = await anext(stream)  # the pipe is still waiting: nothing behind it was needed
    assert first == [{"content": "first", "by": [f"f{n}" for n in range(5)]}]
    release.set()
    assert [e["content"] for e in flat([b async for b in stream])] == ["second"]


class Gated:
    """A stream hook that holds its first event until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def stream(self, event):
        if event["n"] == 0:
            await self.gate.wait()
        return event


def counted(pulled: list, count: int | None = None):
    async def batches():
        n = 0
        while count is None or n < count:
            pulled.append(n)
            yield [{"n": n}]
            n += 1

    return batches()


async def test_a_session_sends_later_batches_before_the_first_is_answered():
    from functions.services.executor import get_executor

    hook, pulled = Gated(), []
    answers = get_executor().filter_stream(object_call("gated", hook), counted(pulled, 6), ctx())
    first = asyncio.ensure_future(anext(answers))
    # Pulling batch 2 means batch 1 went out: while batch 0 still waits for its answer.
    await until(lambda: len(pulled) >= 3)
    assert not first.done()
    hook.gate.set()
    assert await first == [{"n": 0}]
    assert [b async for b in answers] == [[{"n": n}] for n in range(1, 6)]


async def test_a_session_reads_its_input_only_a_bounded_way_ahead():
    from functions.services.executor import get_executor
    from functions.workers.connection import SESSION_IN_FLIGHT

    hook, pulled = Gated(), []
    answers = get_executor().filter_stream(object_call("gated", hook), counted(pulled), ctx())
    first = asyncio.ensure_future(anext(answers))
    await until(lambda: len(pulled) == SESSION_IN_FLIGHT + 1)  # in flight, and one waiting
    await asyncio.sleep(0.2)
    assert len(pulled) == SESSION_IN_FLIGHT + 1
    hook.gate.set()
    assert await first == [{"n": 0}]
    await answers.aclose()


async def test_closing_a_session_early_ends_it_in_the_worker():
    from functions.services.executor import get_executor

    executor = get_executor()
    hook, pulled = Gated(), []
    call = object_call("gated", hook)
    answers = executor.filter_stream(call, counted(pulled), ctx())
    first = asyncio.ensure_future(anext(answers))
    await until(lambda: len(pulled) > 1)
    first.cancel()  # the client went away
    with contextlib.suppress(asyncio.CancelledError):
        await first
    await answers.aclose()
    [worker] = executor.pools()[(call.group, None)].workers
    await until(lambda: not worker.worker.tasks and not worker.worker.sessions)
    assert not worker.calls and not worker.dead


async def test_a_call_that_changes_its_valves_leaves_the_next_calls_alone():
    class Pipe:
        class Valves(BaseModel):
            TAGS: list[str] = []
            NAME: str = "x"

        def __init__(self):
            self.valves = self.Valves()

        def pipe(self, body):
            self.valves.TAGS.append("mine")  # its own copy, validated once per worker
            self.valves.NAME += "!"
            return ",".join(self.valves.TAGS) + self.valves.NAME

    call = object_call("p", Pipe(), valves=Pipe.Valves(TAGS=["a"]))
    assert [texts(await collect(call)) for _ in range(3)] == ["a,minex!"] * 3


async def test_a_session_holds_one_slot_of_its_functions_cap_while_its_worker_works():
    from functions.services.executor import get_executor

    executor = get_executor()
    hook, pulled = Gated(), []
    call = object_call("gated", hook)
    answers = executor.filter_stream(call, counted(pulled, 3), ctx())
    first = asyncio.ensure_future(anext(answers))
    await until(lambda: len(pulled) == 3)  # three batches at the worker, one slot
    cap = executor.cap(call.function_id)
    assert cap._value == executor.max_concurrency - 1
    hook.gate.set()
    assert await first == [{"n": 0}]
    # The other answers wait for their reader; the function's slot does not.
    await until(lambda: cap._value == executor.max_concurrency)
    assert [b async for b in answers] == [[{"n": 1}], [{"n": 2}]]


async def test_a_stream_hooks_events_and_questions_reach_the_callers_session():
    class Asking:
        async def stream(self, event, __event_emitter__, __event_call__):
            await __event_emitter__({"type": "status", "data": {"n": event["n"]}})
            return event | {"answer": await __event_call__({"type": "input"})}

    recorder = EventRecorder()

    async def reply(event):
        return "yes"

    context = ctx(event_emitter=recorder.emit, event_call=reply)
    events = flat(
        await through([object_call("asking", Asking())], [{"n": 1}, {"n": 2}], context=context)
    )
    assert events == [{"n": 1, "answer": "yes"}, {"n": 2, "answer": "yes"}]
    assert [e.data["n"] for e in recorder.events if e.type == "status"] == [1, 2]


async def test_a_pipe_failing_midway_gets_its_filtered_chunks_out_before_its_error():
    class Pipe:
        async def pipe(self, body):
            yield "a"
            raise RuntimeError("model went away")

    async def events(batches):
        async for batch in batches:
            yield [{"content": chunk.text} for chunk in batch]

    answer = runtime.run_pipe(object_call("flaky", Pipe()), {}, ctx())
    stream = runtime.stream_through([make_filter("f", 0, [])], events(answer), ctx())
    seen = []
    with pytest.raises(HookError, match="model went away") as info:
        async for batch in stream:
            seen.extend(batch)
    assert seen == [{"content": "a", "by": ["f"]}]
    assert info.value.function_id == "flaky"  # the pipe's failure, not the filter's
