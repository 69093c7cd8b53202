"""Events for API clients: the plugins' events reach whoever called the chat API.

A streamed completion carries each event as a chunk with an empty delta and the event
under "event" (the OpenAI SDK's typical loop reads past it; Open WebUI itself reads
events from that key); a plain one carries them in an extra "events" field; an action
answers its result with its events; `__event_call__` over the API answers at once
with the "no interactive session" result.

The SDK tests run against a live daphne (plugins in sandboxed workers). The tests of
when an event goes out run the plugins in the test process (the inline executor),
where a gated pipe waits for the test to open its gate (tests.support.gates).
"""

import asyncio
import json

import httpx
import openai
import pytest
from django.test import AsyncClient

from chat.services.chats import chat_create
from functions.services.events import NO_SESSION

# Each of its hooks says so: a status from the inlet, a notification from the outlet.
EVENTS_FILTER = """
class Filter:
    async def inlet(self, body, __event_emitter__=None):
        await __event_emitter__({"type": "status", "data": {"description": "inlet", "done": True}})
        return body

    async def outlet(self, body, __event_emitter__=None):
        note = {"type": "success", "content": "outlet"}
        await __event_emitter__({"type": "notification", "data": note})
        return body
"""

# A status, two pieces of answer with a citation (Open WebUI's alias of "source")
# between them, then a notification.
EVENTS_PIPE = """
class Pipe:
    async def pipe(self, body, __event_emitter__=None):
        status = {"description": "searching", "done": False}
        await __event_emitter__({"type": "status", "data": status})
        yield "Hello "
        source = {"source": {"name": "doc"}, "document": ["text"], "metadata": [{"source": "doc"}]}
        await __event_emitter__({"type": "citation", "data": source})
        yield "world"
        await __event_emitter__({"type": "notification", "data": {"content": "done"}})
"""

# Asks the user for a value and answers what it got back.
ASKING_PIPE = """
import json

class Pipe:
    async def pipe(self, body, __event_call__=None):
        asked = {"title": "Your name?", "message": "Who is asking?", "placeholder": "name"}
        return json.dumps(await __event_call__({"type": "input", "data": asked}))
"""

# As the request's recorder keeps them: canonical types, schema-checked data.
INLET = {"type": "status", "data": {"description": "inlet", "done": True, "hidden": None}}
SEARCHING = {"type": "status", "data": {"description": "searching", "done": False, "hidden": None}}
SOURCE = {
    "type": "source",
    "data": {"source": {"name": "doc"}, "document": ["text"], "metadata": [{"source": "doc"}]},
}
DONE = {"type": "notification", "data": {"type": "info", "content": "done"}}
OUTLET = {"type": "notification", "data": {"type": "success", "content": "outlet"}}
EVENTS = [INLET, SEARCHING, SOURCE, DONE, OUTLET]
ASKED = {
    "type": "input",
    "data": {"title": "Your name?", "message": "Who is asking?", "placeholder": "name"},
}
PINGING = {"type": "status", "data": {"description": "Pinging...", "done": True, "hidden": None}}
HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
def events_functions(make_function):
    make_function("events_filter", content=EVENTS_FILTER, is_active=True, is_global=True)
    make_function("events_pipe", content=EVENTS_PIPE, is_active=True)


@pytest.fixture
def sdk(live, bob_key):
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=bob_key, max_retries=0, timeout=30)


def event_of(chunk) -> dict | None:
    return (chunk.model_extra or {}).get("event")


# Streamed, through the openai SDK.


def test_a_streamed_answer_carries_the_events_and_the_sdks_typical_loop_reads_past_them(
    sdk, events_functions
):
    stream = sdk.chat.completions.create(model="events_pipe", messages=HELLO, stream=True)
    text, events, order = [], [], []
    for chunk in stream:
        # The loop every SDK example has: it must not crash on an event.
        text.append(chunk.choices[0].delta.content or "")
        if (event := event_of(chunk)) is not None:
            assert (
                chunk.object == "chat.completion.chunk" and chunk.choices[0].delta.content is None
            )
            events.append(event)
            order.append(
                event["data"].get("description") or event["data"].get("content") or event["type"]
            )
        elif chunk.choices[0].delta.content:
            order.append(chunk.choices[0].delta.content)
        elif chunk.choices[0].finish_reason:
            order.append(f"finish: {chunk.choices[0].finish_reason}")
    assert "".join(text) == "Hello world"
    assert events == EVENTS
    # The inlet's first; the pipe's status before the text that followed it; the
    # outlet's after the finish chunk. (An event can overtake the chunks its pipe
    # yielded just before it: its worker sends events at once and batches chunks.)
    assert order[:2] == ["inlet", "searching"], order
    assert order.index("searching") < order.index("Hello ") < order.index("world"), order
    assert order.index("done") < order.index("finish: stop"), order
    assert order[-2:] == ["finish: stop", "outlet"], order


def test_the_sdks_stream_helper_and_async_client_read_past_the_events_too(
    live, bob_key, sdk, events_functions
):
    with sdk.chat.completions.stream(model="events_pipe", messages=HELLO) as stream:
        chunks = [e.chunk for e in stream if e.type == "chunk"]
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Hello world"
    assert [event_of(c) for c in chunks if event_of(c)] == EVENTS

    async def read_async() -> tuple[str, list[dict]]:
        client = openai.AsyncOpenAI(
            base_url=f"{live.url}/v1", api_key=bob_key, max_retries=0, timeout=30
        )
        text, events = "", []
        stream = await client.chat.completions.create(
            model="events_pipe", messages=HELLO, stream=True
        )
        async for chunk in stream:
            text += chunk.choices[0].delta.content or ""
            if event_of(chunk):
                events.append(event_of(chunk))
        await client.close()
        return text, events

    assert asyncio.run(read_async()) == ("Hello world", EVENTS)


def test_raw_sse_has_one_data_line_per_event_each_valid_json(live, bob_key, events_functions):
    body = {"model": "events_pipe", "messages": HELLO, "stream": True}
    headers = {"Authorization": f"Bearer {bob_key}"}
    with httpx.stream(
        "POST", f"{live.url}/api/chat/completions", json=body, headers=headers, timeout=30
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines) and lines[-1] == "data: [DONE]"
    frames = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    carried = [frame for frame in frames if "event" in frame]
    assert [frame["event"] for frame in carried] == EVENTS
    ids = {frame["id"] for frame in frames}
    assert len(ids) == 1  # the events are chunks of the same completion
    for frame in carried:
        assert frame["choices"] == [
            {"index": 0, "delta": {}, "logprobs": None, "finish_reason": None}
        ]


# Not streamed.


def test_a_plain_answer_carries_the_events_in_an_extra_field(sdk, events_functions):
    answer = sdk.chat.completions.create(model="events_pipe", messages=HELLO)
    assert answer.choices[0].message.content == "Hello world"
    assert answer.model_extra["events"] == EVENTS


def test_an_answer_saved_into_a_chat_carries_its_events_streamed_and_not(
    sdk, bob, events_functions
):
    chat = chat_create(user=bob, document={"title": "Events"})
    saved = {"chat_id": chat.id}
    stream = sdk.chat.completions.create(
        model="events_pipe", messages=HELLO, stream=True, extra_body=saved | {"id": "a1"}
    )
    streamed = [event_of(c) for c in stream if event_of(c)]
    answer = sdk.chat.completions.create(
        model="events_pipe", messages=HELLO, extra_body=saved | {"id": "a2"}
    )
    assert streamed == EVENTS and answer.model_extra["events"] == EVENTS
    assert answer.choices[0].message.content == "Hello world"


# __event_call__ over the API, with no page open: answered at once.


@pytest.mark.parametrize("saved", [False, True], ids=["no-chat", "a-chat-no-page-shows"])
def test_event_call_over_the_api_answers_at_once_with_no_interactive_session(
    sdk, bob, make_function, saved
):
    make_function("asking_pipe", content=ASKING_PIPE, is_active=True)
    extra = {}
    if saved:
        chat = chat_create(user=bob, document={"title": "Ask"})
        extra = {"chat_id": chat.id, "id": "a1"}
    answer = sdk.chat.completions.create(model="asking_pipe", messages=HELLO, extra_body=extra)
    assert json.loads(answer.choices[0].message.content) == NO_SESSION
    assert answer.model_extra["events"] == [ASKED]
    if saved:
        extra["id"] = "a2"
    stream = sdk.chat.completions.create(
        model="asking_pipe", messages=HELLO, stream=True, extra_body=extra
    )
    chunks = list(stream)
    assert [event_of(c) for c in chunks if event_of(c)] == [ASKED]
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert json.loads(text) == NO_SESSION


# Actions.


HTML_ACTION = """
class Action:
    async def action(self, body, __event_emitter__=None):
        return "<b>card</b>", {"Content-Disposition": "inline"}
"""
TEXT_ACTION = """
class Action:
    async def action(self, body, __event_emitter__=None):
        await __event_emitter__({"type": "notification", "data": {"content": "noted"}})
        return "plain text"
"""
ACTION_BODY = {
    "model": "echo_pipe",
    "messages": [{"id": "m1", "role": "assistant", "content": "hi"}],
    "id": "m1",
}


def test_an_action_answers_its_result_with_its_events(live, bob_key, make_function):
    make_function("echo_pipe", is_active=True)
    make_function("ping_action", is_active=True, is_global=True)
    make_function("dialog_action", is_active=True, is_global=True)
    make_function("html_action", content=HTML_ACTION, is_active=True, is_global=True)
    make_function("text_action", content=TEXT_ACTION, is_active=True, is_global=True)
    headers = {"Authorization": f"Bearer {bob_key}"}

    def run(action_id: str):
        response = httpx.post(
            f"{live.url}/api/chat/actions/{action_id}",
            json=ACTION_BODY,
            headers=headers,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()

    # A dict result (what Open WebUI's frontend reads) gains "events".
    assert run("ping_action") == {"content": "pong", "events": [PINGING]}
    embed = {"type": "embeds", "data": {"embeds": ["<b>card</b>"], "replace": None}}
    assert run("html_action") == {"status": True, "embeds": ["<b>card</b>"], "events": [embed]}
    # Anything else is wrapped. The dialog is answered at once ("no interactive
    # session"), so the action gives up: None, rather than a bare null.
    noted = {"type": "notification", "data": {"type": "info", "content": "noted"}}
    assert run("text_action") == {"result": "plain text", "events": [noted]}
    dialog = run("dialog_action")
    assert dialog["result"] is None
    assert [event["type"] for event in dialog["events"]] == ["input"]
    assert dialog["events"][0]["data"]["title"] == "Add a note"


# When an event goes out: as it is emitted, in its place among the chunks (in process).

# Says "first ", then (once the gate named by the user's message opens) a status, then
# waits for the gate named "<that>-more" before saying "second".
GATED_PIPE = """
import asyncio
from tests.support.gates import wait_gate

class Pipe:
    async def pipe(self, body, __event_emitter__=None):
        gate = body["messages"][-1]["content"]
        yield "first "
        await asyncio.to_thread(wait_gate, gate)
        await __event_emitter__({"type": "status", "data": {"description": "thinking"}})
        await asyncio.to_thread(wait_gate, gate + "-more")
        yield "second"
"""
THINKING = {"type": "status", "data": {"description": "thinking", "done": None, "hidden": None}}

FAILING_PIPE = """
class Pipe:
    async def pipe(self, body, __event_emitter__=None):
        await __event_emitter__({"type": "status", "data": {"description": "trying"}})
        raise RuntimeError("gave up")
"""


class Frames:
    """The data lines of a streamed answer, read as they come."""

    def __init__(self, response) -> None:
        self.pieces = aiter(response.streaming_content)
        self.text = ""
        self.taken = 0

    async def next(self) -> dict | str:
        while "\n\n" not in self.text[self.taken :]:
            # A safety net for a broken stream, not a timing the test relies on.
            self.text += (await asyncio.wait_for(anext(self.pieces), 30)).decode()
        end = self.text.index("\n\n", self.taken)
        line, self.taken = self.text[self.taken : end], end + 2
        data = line.removeprefix("data: ")
        return data if data == "[DONE]" else json.loads(data)


async def post_stream(user, body: dict):
    client = AsyncClient()
    await client.aforce_login(user)
    return await client.post("/api/chat/completions", body, content_type="application/json")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("saved", [False, True], ids=["plain", "saved-into-a-chat"])
async def test_an_event_goes_out_as_it_is_emitted_in_its_place(bob, make_function, gates, saved):
    from asgiref.sync import sync_to_async

    await sync_to_async(make_function)("gated_pipe", content=GATED_PIPE, is_active=True)
    body = {"model": "gated_pipe", "messages": [{"role": "user", "content": "g"}], "stream": True}
    if saved:
        chat = await sync_to_async(chat_create)(user=bob, document={"title": "Gated"})
        body |= {"chat_id": chat.id, "id": "a1"}
    frames = Frames(await post_stream(bob, body))
    first = await frames.next()
    assert first["choices"][0]["delta"]["content"] == "first "
    gates.open_gate("g")
    # Out while the pipe still works on its next chunk, and after the chunk before it.
    thinking = await frames.next()
    assert thinking["event"] == THINKING and thinking["id"] == first["id"]
    gates.open_gate("g-more")
    rest = [await frames.next() for _ in range(3)]
    assert rest[0]["choices"][0]["delta"]["content"] == "second"
    assert rest[1]["choices"][0]["finish_reason"] == "stop"
    assert rest[2] == "[DONE]"


@pytest.mark.django_db(transaction=True)
async def test_a_failed_plain_answer_still_carries_its_events(bob, make_function):
    from asgiref.sync import sync_to_async

    await sync_to_async(make_function)("failing_pipe", content=FAILING_PIPE, is_active=True)
    client = AsyncClient()
    await client.aforce_login(bob)
    body = {"model": "failing_pipe", "messages": HELLO}
    response = await client.post("/api/chat/completions", body, content_type="application/json")
    assert response.status_code == 500
    assert "gave up" in response.json()["error"]["message"]
    trying = {"description": "trying", "done": None, "hidden": None}
    assert response.json()["events"] == [{"type": "status", "data": trying}]


# Refused or failed before any answer: the events emitted first come back with the error.

REFUSING_FILTER = """
class Filter:
    async def inlet(self, body, __event_emitter__=None):
        await __event_emitter__({"type": "status", "data": {"description": "checking"}})
        raise Exception("Too many turns.")
"""

FAILING_ACTION = """
class Action:
    async def action(self, body, __event_emitter__=None):
        await __event_emitter__({"type": "notification", "data": {"content": "working"}})
        raise RuntimeError("broke")
"""
CHECKING = {"type": "status", "data": {"description": "checking", "done": None, "hidden": None}}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("saved", [False, True], ids=["plain", "saved-into-a-chat"])
async def test_an_inlet_refusal_carries_the_events_emitted_before_it(bob, make_function, saved):
    from asgiref.sync import sync_to_async

    await sync_to_async(make_function)("echo_pipe", is_active=True)
    await sync_to_async(make_function)(
        "refusing_filter", content=REFUSING_FILTER, is_active=True, is_global=True
    )
    body = {"model": "echo_pipe", "messages": HELLO, "stream": True}
    if saved:
        chat = await sync_to_async(chat_create)(user=bob, document={"title": "Refused"})
        body |= {"chat_id": chat.id, "id": "a1"}
    response = await post_stream(bob, body)
    assert response.status_code == 400
    refusal = json.loads(response.content)
    assert refusal["error"]["type"] == "filter_abort" and refusal["detail"] == "Too many turns."
    assert refusal["events"] == [CHECKING]


@pytest.mark.django_db(transaction=True)
async def test_a_failed_action_carries_the_events_it_emitted(bob, make_function):
    from asgiref.sync import sync_to_async

    await sync_to_async(make_function)("echo_pipe", is_active=True)
    await sync_to_async(make_function)(
        "failing_action", content=FAILING_ACTION, is_active=True, is_global=True
    )
    client = AsyncClient()
    await client.aforce_login(bob)
    response = await client.post(
        "/api/chat/actions/failing_action", ACTION_BODY, content_type="application/json"
    )
    assert response.status_code == 500
    failure = response.json()
    assert "broke" in failure["error"]["message"]
    assert failure["events"] == [
        {"type": "notification", "data": {"type": "info", "content": "working"}}
    ]
