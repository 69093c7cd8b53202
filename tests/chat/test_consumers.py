"""chat.consumers: the chat pages' socket, driven as a browser's would be, through
the real ASGI application (session cookie, origin check, routing).

The plugins run in the test process (the inline executor); the gated pipe waits
for the test to open the gate its user's message names (tests.support.gates), so
each test decides when an answer goes on, without sleeping.
"""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient, Client

from chat.models import Message, MessageStatus
from chat.services.chats import chat_create
from chat.services.run_manager import run_manager

pytestmark = pytest.mark.django_db(transaction=True)

GATED_PIPE = """
import asyncio
from tests.support.gates import wait_gate

class Pipe:
    async def pipe(self, body, __event_emitter__=None):
        yield "first "
        status = {"description": "thinking", "done": False}
        await __event_emitter__({"type": "status", "data": status})
        await asyncio.to_thread(wait_gate, body["messages"][-1]["content"])
        yield "**second**"
"""

# A safety net for a broken consumer, not a timing any test relies on.
PATIENCE = 20


@pytest.fixture
def gated(make_function):
    return make_function("gated_pipe", content=GATED_PIPE, is_active=True)


@pytest.fixture
def chat(bob, gated):
    return chat_create(user=bob, document={"title": "Socket", "models": ["gated_pipe"]})


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def open_socket(
    user, chat_id: str, *, tab: str = ""
) -> tuple[WebsocketCommunicator, bool, int | None]:
    """A chat page's socket (`tab`: the page's id, as the page puts it in the URL)."""
    from fnplatform.asgi import application

    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if user is not None:
        headers.append((b"cookie", await sync_to_async(session_cookie)(user)))
    path = f"/ws/chat/{chat_id}/" + (f"?tab={tab}" if tab else "")
    socket = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await socket.connect()
    if not connected:
        return socket, False, code
    first = await socket.receive_output(timeout=PATIENCE)
    if first["type"] == "websocket.close":  # refused: closed with a code of ours
        return socket, False, first["code"]
    # A page that joins is drawn the chat as it is now, first.
    assert 'id="thread"' in first["text"]
    return socket, connected, code


async def fragments_until(socket: WebsocketCommunicator, *needles: str) -> list[str]:
    """The HTML fragments the page gets, up to the first holding every needle."""
    got: list[str] = []
    while not got or not all(needle in got[-1] for needle in needles):
        got.append(await socket.receive_from(timeout=PATIENCE))
    return got


def finished(fragment: str) -> bool:
    return 'id="thread"' in fragment and "aria-busy" not in fragment


async def until_finished(socket: WebsocketCommunicator) -> list[str]:
    got: list[str] = []
    while not got or not finished(got[-1]):
        got.append(await socket.receive_from(timeout=PATIENCE))
    return got


async def send(socket: WebsocketCommunicator, **fields) -> None:
    # What htmx's ws extension sends: the form's fields, and the request headers.
    await socket.send_to(text_data=json.dumps({**fields, "HEADERS": {"HX-Request": "true"}}))


async def answers(chat) -> list[Message]:
    return [m async for m in Message.objects.filter(chat=chat, role="assistant").order_by("pk")]


async def the_run(chat):
    return next(run for (chat_id, _), run in run_manager().runs.items() if chat_id == chat.id)


# Connecting.


async def test_anonymous_and_other_users_are_refused_with_codes_not_retried(outsider, chat):
    for user, code in ((None, 4401), (outsider, 4404)):
        socket, connected, closed_with = await open_socket(user, chat.id)
        assert (connected, closed_with) == (False, code)
        await socket.disconnect()


async def test_a_chat_that_does_not_exist_is_refused(bob):
    socket, connected, code = await open_socket(bob, "no-such-chat")
    assert (connected, code) == (False, 4404)
    await socket.disconnect()


# Sending, streaming, saving.


async def test_a_sent_message_streams_to_the_page_and_is_saved(bob, chat, gates):
    socket, connected, _ = await open_socket(bob, chat.id)
    assert connected
    await send(socket, action="send", content="go")
    started = await fragments_until(socket, 'id="thread"', "aria-busy")
    assert "go" in started[-1] and "Stop" in "".join(started)
    appended = await fragments_until(socket, "beforeend:#tail-", "first ")
    assert appended[-1].startswith("<span")  # text appended, not the message sent again
    gates.open_gate("go")
    final = (await until_finished(socket))[-1]
    assert "<strong>second</strong>" in final and "first" in final
    assert "Regenerate" in final and "Status history (1)" in final
    [answer] = await answers(chat)
    assert (answer.status, answer.content) == (MessageStatus.DONE, "first **second**")
    user_message = await Message.objects.aget(chat=chat, role="user")
    assert user_message.content == "go" and answer.parent_id == user_message.pk
    await socket.disconnect()


async def test_a_status_event_is_drawn_live_in_its_message(bob, chat, gates):
    socket, _, _ = await open_socket(bob, chat.id)
    await send(socket, action="send", content="status")
    status = await fragments_until(socket, 'id="status-', "thinking")
    assert 'role="status"' in status[-1] and 'hx-swap-oob="true"' in status[-1]
    gates.open_gate("status")
    await until_finished(socket)
    await socket.disconnect()


async def test_a_second_page_on_the_chat_sees_the_same_run(bob, chat, gates):
    first, _, _ = await open_socket(bob, chat.id)
    second, _, _ = await open_socket(bob, chat.id)
    await send(first, action="send", content="both")
    for socket in (first, second):
        await fragments_until(socket, "beforeend:#tail-", "first ")
    gates.open_gate("both")
    for socket in (first, second):
        assert "<strong>second</strong>" in (await until_finished(socket))[-1]
    await first.disconnect()
    await second.disconnect()


async def test_stop_ends_the_answer_stopped_with_what_it_had(bob, chat, gates):
    socket, _, _ = await open_socket(bob, chat.id)
    await send(socket, action="send", content="stop-me")
    await fragments_until(socket, "beforeend:#tail-", "first ")
    await send(socket, action="stop")
    final = (await until_finished(socket))[-1]
    assert "Stopped." in final
    [answer] = await answers(chat)
    assert (answer.status, answer.content) == (MessageStatus.STOPPED, "first ")
    await socket.disconnect()


async def test_a_page_that_joins_mid_run_gets_the_answer_so_far_then_the_rest(bob, chat, gates):
    first, _, _ = await open_socket(bob, chat.id)
    await send(first, action="send", content="rejoin")
    await fragments_until(first, 'id="status-', "thinking")
    await first.disconnect()  # the tab closed (or the network dropped)
    again, connected, _ = await open_socket(bob, chat.id)
    assert connected
    snapshot = await fragments_until(again, 'id="msg-', "first", "thinking")
    assert 'hx-swap-oob="true"' in snapshot[-1] and "aria-busy" in snapshot[-1]
    gates.open_gate("rejoin")
    assert "<strong>second</strong>" in (await until_finished(again))[-1]
    await again.disconnect()


async def test_a_run_outlives_its_socket_and_its_answer_is_saved(bob, chat, gates):
    socket, _, _ = await open_socket(bob, chat.id)
    await send(socket, action="send", content="bye")
    await fragments_until(socket, "beforeend:#tail-", "first ")
    await socket.disconnect()
    run = await the_run(chat)
    gates.open_gate("bye")
    assert await asyncio.wait_for(run.wait(), PATIENCE) == MessageStatus.DONE
    [answer] = await answers(chat)
    assert (answer.status, answer.content) == (MessageStatus.DONE, "first **second**")


async def test_a_run_started_over_http_reaches_the_open_page(bob, chat, gates):
    socket, _, _ = await open_socket(bob, chat.id)
    gates.open_gate("api")
    client = AsyncClient()
    await client.aforce_login(bob)
    body = {
        "model": "gated_pipe",
        "messages": [{"role": "user", "content": "api"}],
        "stream": False,
        "chat_id": chat.id,
        "id": "from-api",
    }
    response = await client.post("/api/chat/completions", body, content_type="application/json")
    assert response.status_code == 200
    assert 'id="msg-from-api"' in (await until_finished(socket))[-1]
    await socket.disconnect()


# Regenerate and edit.


async def test_regenerate_answers_the_last_question_anew(bob, chat, gates):
    gates.open_gate("again")
    socket, _, _ = await open_socket(bob, chat.id)
    await send(socket, action="send", content="again")
    await until_finished(socket)
    [first] = await answers(chat)
    await send(socket, action="regenerate", message_id=first.message_id)
    final = (await until_finished(socket))[-1]
    first_answer, second_answer = await answers(chat)
    assert first_answer.parent_id == second_answer.parent_id  # siblings
    assert second_answer.status == MessageStatus.DONE
    # The page shows the new answer, not the old one.
    assert f'id="msg-{second_answer.message_id}"' in final
    assert f'id="msg-{first_answer.message_id}"' not in final
    await socket.disconnect()


async def test_edit_sends_the_message_anew_beside_the_old_one(bob, chat, gates):
    for name in ("original", "edited"):
        gates.open_gate(name)
    socket, _, _ = await open_socket(bob, chat.id)
    await send(socket, action="send", content="original")
    await until_finished(socket)
    original = await Message.objects.aget(chat=chat, role="user")
    await send(socket, action="edit", message_id=original.message_id, content="edited")
    final = (await until_finished(socket))[-1]
    assert "edited" in final and ">original<" not in final
    edited = await Message.objects.aget(chat=chat, role="user", content="edited")
    assert edited.parent_id is None and original.parent_id is None  # both first messages
    assert await Message.objects.filter(chat=chat).acount() == 4  # nothing was lost
    await socket.disconnect()


# Refusals: a clear reason, and nothing lost.


async def test_an_empty_message_is_refused_with_a_reason(bob, chat):
    socket, _, _ = await open_socket(bob, chat.id)
    await send(socket, action="send", content="   ")
    got = await fragments_until(socket, 'id="problem"')
    assert "Write a message first." in got[-1] and 'role="alert"' in got[-1]
    assert not await Message.objects.filter(chat=chat).aexists()
    await socket.disconnect()


async def test_a_message_sent_while_answering_is_refused_and_given_back(bob, chat, gates):
    socket, _, _ = await open_socket(bob, chat.id)
    await send(socket, action="send", content="busy")
    await fragments_until(socket, "beforeend:#tail-", "first ")
    await send(socket, action="send", content="too soon")
    got = await fragments_until(socket, 'id="problem"')
    assert "Wait for the answer" in got[-1]
    composer = next(f for f in got if 'id="composer"' in f)
    assert "too soon" in composer  # the composer has the text back
    gates.open_gate("busy")
    await until_finished(socket)
    assert not await Message.objects.filter(chat=chat, content="too soon").aexists()
    await socket.disconnect()


async def test_a_model_the_user_may_not_use_is_refused(bob, chat, make_function):
    from functions.models import ModelSettings

    settings = await ModelSettings.objects.acreate(model_id="gated_pipe")
    await sync_to_async(settings.allowed_users.add)(
        await sync_to_async(lambda: type(bob).objects.exclude(pk=bob.pk).first())()
    )
    socket, _, _ = await open_socket(bob, chat.id)
    await send(socket, action="send", content="refused")
    got = await fragments_until(socket, 'id="problem"')
    assert "gated_pipe" in got[-1]
    await socket.disconnect()


async def test_an_unknown_request_is_refused(bob, chat):
    socket, _, _ = await open_socket(bob, chat.id)
    await send(socket, action="format-disk")
    assert "unknown" in (await fragments_until(socket, 'id="problem"'))[-1]
    await socket.disconnect()


async def test_an_inlet_refusal_keeps_the_message_and_says_why(bob, chat, make_function):
    refusing = "class Filter:\n    def inlet(self, body):\n        raise ValueError('not today')\n"
    await sync_to_async(make_function)(
        "refusing_filter", content=refusing, is_active=True, is_global=True
    )
    socket, _, _ = await open_socket(bob, chat.id)
    await send(socket, action="send", content="please")
    got = await fragments_until(socket, 'id="problem"')
    assert "not today" in got[-1]
    thread = [f for f in got if 'id="thread"' in f][-1]
    assert "please" in thread and "not today" in thread  # the answer shows its error
    assert not any('id="composer"' in f for f in got)  # kept in the chat, not given back
    [answer] = await answers(chat)
    assert answer.status == MessageStatus.ERROR
    await socket.disconnect()


async def test_an_actions_events_show_on_the_open_pages_as_they_happen(
    bob, chat, gates, make_function
):
    from chat.services.actions import aprepare_action, perform_action

    replacing = (
        "class Action:\n"
        "    async def action(self, body, __event_emitter__=None):\n"
        "        await __event_emitter__({'type': 'replace', 'data': {'content': 'Rewritten'}})\n"
        "        await __event_emitter__({'type': 'status', 'data': {'description': 'done it'}})\n"
    )
    await sync_to_async(make_function)(
        "rewriting_action", content=replacing, is_active=True, is_global=True
    )
    gates.open_gate("act")
    socket, _, _ = await open_socket(bob, chat.id)
    await send(socket, action="send", content="act")
    await until_finished(socket)
    [answer] = await answers(chat)
    other_page, _, _ = await open_socket(bob, chat.id)
    body = {"model": "gated_pipe", "messages": [], "chat_id": chat.id, "id": answer.message_id}
    await perform_action(await aprepare_action(user=bob, action_id="rewriting_action", body=body))
    for page in (socket, other_page):
        drawn = await fragments_until(page, f'id="msg-{answer.message_id}"', "done it")
        assert "Rewritten" in drawn[-1] and "first" not in drawn[-1]
        assert "Regenerate" in drawn[-1]  # drawn whole, with its tools
    await socket.disconnect()
    await other_page.disconnect()
    assert (await Message.objects.aget(pk=answer.pk)).content == "Rewritten"


async def test_a_page_that_joins_is_drawn_the_chat_as_it_is_now(bob, chat, gates):
    from chat.services.live import start_turn
    from fnplatform.asgi import application

    async def first_fragment() -> str:
        cookie = await sync_to_async(session_cookie)(bob)
        headers = [(b"origin", b"http://testserver"), (b"host", b"testserver"), (b"cookie", cookie)]
        socket = WebsocketCommunicator(application, f"/ws/chat/{chat.id}/", headers=headers)
        assert (await socket.connect())[0]
        fragment = await socket.receive_from(timeout=PATIENCE)  # drawn first
        await socket.disconnect()
        return fragment

    run = await start_turn(user=bob, chat_id=chat.id, content="now", model="gated_pipe")
    running = await first_fragment()
    assert 'aria-busy="true"' in running and ">Stop</button>" in running
    gates.open_gate("now")
    await asyncio.wait_for(run.wait(), PATIENCE)
    ended = await first_fragment()  # the answer ended before this page joined
    assert "aria-busy" not in ended and "<strong>second</strong>" in ended
    assert ">Send</button>" in ended


# The chat list follows the user's chats made, renamed and deleted elsewhere.


async def test_a_chat_made_renamed_or_deleted_elsewhere_shows_in_the_pages_chat_list(bob, chat):
    from chat.services.chats import chat_delete, chat_rename

    page, _, _ = await open_socket(bob, chat.id)
    other = await sync_to_async(chat_create)(user=bob, document={"title": "Made in a tab"})
    drawn = (await fragments_until(page, 'id="chat-list"', "Made in a tab"))[-1]
    assert 'hx-swap-oob="true"' in drawn and "Socket" in drawn  # the whole list, again
    assert 'aria-current="page"' in drawn  # this page's chat still marked as open
    await sync_to_async(chat_rename)(chat=other, title="Renamed in a tab")
    await fragments_until(page, "Renamed in a tab", 'hx-swap-oob="true"')
    await sync_to_async(chat_delete)(chat=other)
    drawn = (await fragments_until(page, 'id="chat-list"'))[-1]
    assert "Renamed in a tab" not in drawn and "Socket" in drawn
    await page.disconnect()


async def test_a_page_whose_chat_is_deleted_elsewhere_says_so(bob, chat, alice):
    from chat.services.chats import chat_delete

    page, _, _ = await open_socket(bob, chat.id)
    # Another user's chats are not this page's business.
    await sync_to_async(chat_create)(user=alice, document={"title": "Alice's"})
    await sync_to_async(chat_delete)(chat=chat)
    drawn = await fragments_until(page, 'id="problem"', "This chat was deleted.")
    # One list redrawn: the deletion's; Alice's new chat told bob's page nothing.
    lists = [text for text in drawn if 'id="chat-list"' in text]
    assert len(lists) == 1 and "No chats yet." in lists[0]
    await page.disconnect()
