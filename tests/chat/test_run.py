"""chat.services.run: the one completion service, called directly as every door calls it."""

import pytest
from asgiref.sync import sync_to_async

from chat.services.run import CompletionFailed, completion_run
from functions.services.functions import function_create, function_set_active, function_set_global

pytestmark = pytest.mark.django_db(transaction=True)

CHUNKS_PIPE = """
class Pipe:
    def pipe(self, body):
        for word in ["one ", "two ", "three"]:
            yield word
"""
EVENT_PIPE = """
class Pipe:
    def pipe(self, body):
        yield "before "
        yield {"event": {"type": "status", "data": {"description": "midway"}}}
        yield "after"
"""
FAILING_PIPE = """
class Pipe:
    def pipe(self, body):
        yield "partial "
        raise ValueError("the pipe broke")
"""
MARK_FILTER = """
class Filter:
    def inlet(self, body):
        body["messages"][-1]["content"] += " [inlet]"
        return body

    def outlet(self, body):
        body["messages"][-1]["content"] += " [outlet]"
        return body
"""
ECHO_PIPE = """
class Pipe:
    def pipe(self, body):
        return body["messages"][-1]["content"]
"""


@pytest.fixture
def install(alice):
    def make(id: str, content: str, *, is_global: bool = False) -> None:
        function = function_create(user=alice, id=id, content=content)
        function = function_set_active(user=alice, function=function, active=True)
        if is_global:
            function_set_global(user=alice, function=function, is_global=True)

    return sync_to_async(make)


def body(model: str, text: str = "hi") -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def contents(batches: list[list[dict]]) -> str:
    return "".join(
        (choice.get("delta") or {}).get("content") or ""
        for batch in batches
        for data in batch
        for choice in data.get("choices") or []
    )


async def test_a_stream_comes_in_batches_and_ends_with_the_finish_chunk(alice, install):
    await install("chunks", CHUNKS_PIPE)
    run = await completion_run(user=alice, body=body("chunks"))

    batches = [batch async for batch in run.stream()]

    assert all(batches), "no empty batch is ever written"
    assert contents(batches) == "one two three"
    assert batches[-1][-1]["choices"][0]["finish_reason"] == "stop"
    assert run.outcome.outlet_body["messages"][-1]["content"] == "one two three"


async def test_an_inline_event_is_emitted_in_its_place_in_the_answer(alice, install):
    await install("events", EVENT_PIPE)
    run = await completion_run(user=alice, body=body("events"))
    seen = []

    async for batch in run.stream():
        seen.append((contents([batch]), len(run.req.recorder.events)))

    # What came before the event was passed on before it was emitted, and after it, after.
    assert seen[0] == ("before ", 0)
    assert ("after", 1) in seen
    assert run.req.recorder.events[0].data["description"] == "midway"


async def test_a_failure_mid_stream_ends_it_with_an_error_frame(alice, install):
    await install("failing", FAILING_PIPE)
    run = await completion_run(user=alice, body=body("failing"))

    batches = [batch async for batch in run.stream()]

    error = batches[-1][0]["error"]
    assert error["function_id"] == "failing"
    assert "the pipe broke" in error["message"]


async def test_a_failure_of_a_whole_answer_is_completion_failed_with_its_status(alice, install):
    await install("failing", FAILING_PIPE)
    run = await completion_run(user=alice, body=body("failing"))

    with pytest.raises(CompletionFailed) as failed:
        await run.answer()

    assert failed.value.status == 500
    assert failed.value.frame["error"]["type"] == "function_error"


async def test_the_answer_runs_inlet_and_outlet_once_each(alice, install):
    await install("echo", ECHO_PIPE)
    await install("mark", MARK_FILTER, is_global=True)
    run = await completion_run(user=alice, body=body("echo", "hello"))

    answer = await run.answer()

    assert answer["choices"][0]["message"]["content"] == "hello [inlet] [outlet]"


async def test_bypass_filter_runs_no_filter(alice, install):
    await install("echo", ECHO_PIPE)
    await install("mark", MARK_FILTER, is_global=True)
    run = await completion_run(user=alice, body=body("echo", "hello"), bypass_filter=True)

    answer = await run.answer()

    assert answer["choices"][0]["message"]["content"] == "hello"


async def test_completed_runs_only_the_outlets(alice, install):
    await install("echo", ECHO_PIPE)
    await install("mark", MARK_FILTER, is_global=True)
    finished = body("echo", "hello")
    finished["messages"].append({"role": "assistant", "content": "done"})
    run = await completion_run(user=alice, body=finished, inlet=False)

    result = await run.completed(finished)

    assert [m["content"] for m in result["messages"]] == ["hello", "done [outlet]"]


SEEING_FILTER = """
class Filter:
    def stream(self, event):
        if "event" in event:
            event["event"]["data"]["description"] += " (seen)"
        return event
"""


async def test_inline_events_pass_the_stream_filters_in_their_place(alice, install):
    # As in Open WebUI: a pipe's {"event": ...} goes through the stream filters like
    # any chunk, and is emitted where it stood in the answer.
    await install("events", EVENT_PIPE)
    await install("seeing", SEEING_FILTER, is_global=True)
    run = await completion_run(user=alice, body=body("events"))
    seen = []

    async for batch in run.stream():
        seen.append((contents([batch]), len(run.req.recorder.events)))

    assert seen[0] == ("before ", 0)
    assert ("after", 1) in seen
    assert run.req.recorder.events[0].data["description"] == "midway (seen)"


# The events stream (what the completion door sends API clients).


def _bare_request():
    from types import SimpleNamespace

    from functions.services.context import CallContext
    from functions.services.events import EventRecorder

    recorder = EventRecorder()
    context = CallContext(user={}, event_emitter=recorder.emit, event_call=recorder.call)
    return SimpleNamespace(
        recorder=recorder, context=context, completion_id="c1", created=1, body={"model": "m"}
    )


async def test_a_stream_with_events_takes_the_answer_only_as_fast_as_it_is_read():
    import asyncio

    from chat.services.run import _with_events

    req, pulled = _bare_request(), []

    async def answer():
        for n in range(100):
            pulled.append(n)
            if n == 1:
                await req.context.event_emitter({"type": "status", "data": {"description": "1"}})
            yield [{"n": n}]

    stream = _with_events(req, answer())
    assert await anext(stream) == [{"n": 0}]
    for _ in range(20):
        await asyncio.sleep(0)
    assert pulled == [0]  # the reader has not asked for more: the answer waits
    event = {"type": "status", "data": {"description": "1", "done": None, "hidden": None}}
    second = await anext(stream)
    assert [item.get("event") for item in second] == [event, None]
    assert second[0]["choices"][0]["delta"] == {} and second[1] == {"n": 1}
    await stream.aclose()
    assert len(pulled) == 2


GATED_PIPE = """
import asyncio
from tests.support.gates import wait_gate

class Pipe:
    async def pipe(self, body):
        yield "first "
        await asyncio.to_thread(wait_gate, "run-gate")
        yield "second"
"""


async def test_a_stop_while_the_reader_writes_ends_the_stream_with_the_finish_chunk(
    alice, install, gates
):
    from chat.services.tasks import stop_chat

    await install("gated", GATED_PIPE)
    run = await completion_run(user=alice, body=body("gated") | {"chat_id": "c-stop"})
    stream = run.stream(events=True)
    first = await anext(stream)  # the answer now waits for the reader to ask for more

    assert stop_chat(user=alice, chat_id="c-stop") == 1
    rest = [batch async for batch in stream]

    assert contents([first]) == "first "
    assert [[chunk["choices"][0]["finish_reason"] for chunk in batch] for batch in rest] == [
        ["stop"]
    ]
    assert run.outcome.outlet_body is None  # it ended there: no outlet, no "second"
