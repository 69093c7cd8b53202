"""chat.services.dialogs and the chat socket's dialogs (chat.dialogs): a plugin's
`__event_call__` question is a record that any of the chat's pages shows and answers,
now or after a reconnect; the first answer wins and the other pages close it; nobody
answering in time gives the plugin Open WebUI's timeout answer; another user cannot
answer; an "execute" script's frame comes from a route that reads no session.

The plugins run in the test process (the inline executor): tests/plugins/asking_pipe.py
asks for a name mid-answer and says what it got; the actions are awaited in tasks of
the test, as the chat page's action view runs them.
"""

import asyncio
import json
import threading
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.exceptions import ValidationError
from django.test import AsyncClient, Client
from django.utils import timezone

from chat.models import Dialog, DialogStatus, Message, MessageStatus
from chat.sandbox_execute import execute_frame_url
from chat.services import broadcast, dialogs
from chat.services.actions import aprepare_action, perform_action
from chat.services.chats import chat_create
from chat.services.dialogs import (
    TIMED_OUT,
    dialog_answer,
    dialog_ask,
    dialog_timeout_for,
    dialogs_pending_for,
)
from functions.services.events import NO_SESSION, parse_event
from tests.chat.test_consumers import PATIENCE, fragments_until, open_socket, send, until_finished

pytestmark = pytest.mark.django_db(transaction=True)

ASKED = "Your name?"
EXPIRED = "This question expired"


@pytest.fixture
def asking(make_function):
    return make_function("asking_pipe", is_active=True)


@pytest.fixture
def chat(bob, asking):
    return chat_create(user=bob, document={"title": "Dialogs", "models": ["asking_pipe"]})


def answered_turn() -> dict:
    """A saved turn whose answer ("a1") an action can be run on."""
    messages = {
        "u1": {"id": "u1", "parentId": None, "role": "user", "content": "hi"},
        "a1": {"id": "a1", "parentId": "u1", "role": "assistant", "content": "Hello", "done": True},
    }
    return {"title": "Actions", "models": ["asking_pipe"], "history": {"messages": messages}}


@pytest.fixture
def action_chat(bob, asking, make_function):
    make_function("confirm_echo_action", is_active=True, is_global=True)
    make_function("sandbox_probe_action", is_active=True, is_global=True)
    return chat_create(user=bob, document=answered_turn())


async def the_dialog(chat) -> Dialog:
    return await Dialog.objects.aget(chat=chat)


async def answer_of(chat) -> Message:
    return await Message.objects.aget(chat=chat, role="assistant")


def gone(dialog: Dialog) -> tuple[str, str]:
    """The needles of the fragment that takes a dialog off a page."""
    return f'id="dialog-{dialog.id}"', 'hx-swap-oob="delete"'


async def run_action(user, chat, action_id: str, *, from_page: bool = True):
    """An action on the chat's answer "a1", as a task: a chat page's button (its
    questions wait for a page), or a request over the API."""
    body = {"model": "asking_pipe", "messages": [], "chat_id": chat.id, "id": "a1"}
    req = await aprepare_action(user=user, action_id=action_id, body=body)
    req.from_page = from_page
    return asyncio.create_task(perform_action(req))


# Asked by a run: every page shows it, any page answers it.


async def test_a_runs_question_shows_on_every_page_and_another_page_answers_it(bob, chat):
    first, _, _ = await open_socket(bob, chat.id)
    second, _, _ = await open_socket(bob, chat.id)
    await send(first, action="send", content="hello")
    for page in (first, second):
        drawn = (await fragments_until(page, "<dialog", ASKED))[-1]
        assert 'aria-modal="true"' in drawn and 'placeholder="Name"' in drawn
        assert "Who is asking?" in drawn and "beforeend:#dialogs" in drawn
    dialog = await the_dialog(chat)
    assert (dialog.kind, dialog.status, dialog.function_id) == ("input", "pending", "asking_pipe")
    assert (await answer_of(chat)).status == MessageStatus.STREAMING  # the run waits
    await send(second, action="dialog_answer", dialog_id=dialog.id, answer="Ada")
    await fragments_until(first, *gone(dialog))  # the other page closes it
    await until_finished(first)
    answer = await answer_of(chat)
    assert (answer.status, answer.content) == (MessageStatus.DONE, "Asking. You said: 'Ada'")
    dialog = await the_dialog(chat)
    assert (dialog.status, dialog.answer) == (DialogStatus.ANSWERED, "Ada")
    await first.disconnect()
    await second.disconnect()


async def test_a_question_outlives_its_page_and_an_answer_after_reconnecting_resumes_the_run(
    bob, chat
):
    page, _, _ = await open_socket(bob, chat.id)
    await send(page, action="send", content="hello")
    await fragments_until(page, "<dialog", ASKED)
    await page.disconnect()  # the tab closed, or the network dropped
    again, connected, _ = await open_socket(bob, chat.id)
    assert connected
    # The page that joins is drawn the chat's open dialogs (all of #dialogs, once).
    drawn = (await fragments_until(again, 'id="dialogs"', ASKED))[-1]
    assert 'hx-swap-oob="true"' in drawn and drawn.count("<dialog") == 1
    dialog = await the_dialog(chat)
    await send(again, action="dialog_answer", dialog_id=dialog.id, answer="Grace")
    await until_finished(again)
    assert (await answer_of(chat)).content == "Asking. You said: 'Grace'"
    await again.disconnect()


async def test_a_question_nobody_answers_expires_with_open_webuis_timeout_answer(
    bob, chat, settings
):
    settings.FNPLATFORM_DIALOG_TIMEOUT_SECONDS = 0.5
    page, _, _ = await open_socket(bob, chat.id)
    await send(page, action="send", content="hello")
    await fragments_until(page, "<dialog", ASKED)
    # The page shows it expired, in place of the question.
    expired = (await fragments_until(page, EXPIRED))[-1]
    assert 'data-status="expired"' in expired and 'hx-swap-oob="true"' in expired
    await until_finished(page)
    answer = await answer_of(chat)
    assert answer.status == MessageStatus.DONE
    assert answer.content == f"Asking. You said: {TIMED_OUT!r}"
    assert (await the_dialog(chat)).status == DialogStatus.EXPIRED
    # Too late: an answer now is refused, and the page shows it expired.
    await send(page, action="dialog_answer", dialog_id=(await the_dialog(chat)).id, answer="x")
    assert EXPIRED in (await fragments_until(page, EXPIRED))[-1]
    await page.disconnect()


async def test_the_first_answer_wins_and_a_late_page_is_told_it_closed(bob, chat):
    first, _, _ = await open_socket(bob, chat.id)
    late, _, _ = await open_socket(bob, chat.id)
    await send(first, action="send", content="hello")
    for page in (first, late):
        await fragments_until(page, "<dialog", ASKED)
    dialog = await the_dialog(chat)
    await send(first, action="dialog_answer", dialog_id=dialog.id, answer="first")
    await fragments_until(late, *gone(dialog))
    await send(late, action="dialog_answer", dialog_id=dialog.id, answer="second")
    refused = await fragments_until(late, *gone(dialog))
    assert not any('id="problem"' in fragment for fragment in refused)
    await until_finished(first)
    assert (await answer_of(chat)).content == "Asking. You said: 'first'"
    assert (await the_dialog(chat)).answer == "first"
    await first.disconnect()
    await late.disconnect()


async def test_another_user_cannot_answer_a_dialog(bob, outsider, chat):
    page, _, _ = await open_socket(bob, chat.id)
    await send(page, action="send", content="hello")
    await fragments_until(page, "<dialog", ASKED)
    dialog = await the_dialog(chat)
    own = await sync_to_async(chat_create)(user=outsider, document={"title": "Mine"})
    intruder, connected, _ = await open_socket(outsider, own.id)
    assert connected
    await send(intruder, action="dialog_answer", dialog_id=dialog.id, answer="eve")
    refused = (await fragments_until(intruder, 'id="problem"'))[-1]
    assert "No such question." in refused
    assert (await the_dialog(chat)).status == DialogStatus.PENDING
    await send(page, action="dialog_answer", dialog_id=dialog.id, cancel="true")
    await until_finished(page)
    assert (await answer_of(chat)).content == "Asking. You said: False"  # cancelled
    await intruder.disconnect()
    await page.disconnect()


async def test_a_stopped_run_expires_its_question_on_every_page(bob, chat):
    page, _, _ = await open_socket(bob, chat.id)
    await send(page, action="send", content="hello")
    await fragments_until(page, "<dialog", ASKED)
    await send(page, action="stop")
    await fragments_until(page, EXPIRED)
    await until_finished(page)
    assert (await the_dialog(chat)).status == DialogStatus.EXPIRED
    assert (await answer_of(chat)).status == MessageStatus.STOPPED
    await page.disconnect()


# Asked by an action on a message.


async def test_an_actions_confirmation_cancelled_on_the_page_gives_the_action_false(
    bob, action_chat
):
    page, _, _ = await open_socket(bob, action_chat.id)
    task = await run_action(bob, action_chat, "confirm_echo_action")
    drawn = (await fragments_until(page, "<dialog", "Really rewrite?"))[-1]
    assert ">Confirm</button>" in drawn and ">Cancel</button>" in drawn
    dialog = await the_dialog(action_chat)
    assert dialog.message_id == "a1" and dialog.kind == "confirmation"
    await send(page, action="dialog_answer", dialog_id=dialog.id, cancel="true")
    assert await asyncio.wait_for(task, PATIENCE) == {"confirmed": False}
    saved = await Message.objects.aget(chat=action_chat, message_id="a1")
    assert saved.content == "Confirmed: False"
    assert (await the_dialog(action_chat)).status == DialogStatus.CANCELLED
    await page.disconnect()


async def test_an_actions_question_waits_for_a_page_that_opens_later(bob, action_chat):
    told = await listener(action_chat.id)  # not a page: a listener of the chat's group
    task = await run_action(bob, action_chat, "confirm_echo_action")
    assert (await opened(told))["type"] == "dialog.opened"  # stored; no page is open
    page, _, _ = await open_socket(bob, action_chat.id)
    await fragments_until(page, 'id="dialogs"', "Really rewrite?")
    await send(page, action="dialog_answer", dialog_id=(await the_dialog(action_chat)).id)
    assert await asyncio.wait_for(task, PATIENCE) == {"confirmed": True}
    await page.disconnect()


async def test_an_execute_script_runs_in_a_sandboxed_frame_and_its_value_goes_to_the_action(
    bob, action_chat
):
    page, _, _ = await open_socket(bob, action_chat.id)
    task = await run_action(bob, action_chat, "sandbox_probe_action")
    drawn = (await fragments_until(page, "<iframe", "data-dialog-frame"))[-1]
    dialog = await the_dialog(action_chat)
    assert 'sandbox="allow-scripts allow-downloads"' in drawn
    assert "allow-same-origin" not in drawn and "document.cookie" not in drawn  # served apart
    assert 'src="/sandbox/execute/' in drawn
    result = {"value": {"cookie": None, "parent": None, "fetch": None, "value": 42}}
    await send(page, action="dialog_answer", dialog_id=dialog.id, result=json.dumps(result))
    await asyncio.wait_for(task, PATIENCE)
    saved = await Message.objects.aget(chat=action_chat, message_id="a1")
    assert saved.content == "Sandbox: cookie=None, parent=None, fetch=None, value=42"
    await page.disconnect()


async def test_a_script_that_throws_gives_the_action_the_error(bob, action_chat):
    page, _, _ = await open_socket(bob, action_chat.id)
    task = await run_action(bob, action_chat, "sandbox_probe_action")
    await fragments_until(page, "data-dialog-frame")
    dialog = await the_dialog(action_chat)
    error = json.dumps({"error": "TypeError: nope"})
    await send(page, action="dialog_answer", dialog_id=dialog.id, result=error)
    assert await asyncio.wait_for(task, PATIENCE) == {"got": {"error": "TypeError: nope"}}
    await page.disconnect()


# An "execute" script runs in one page only, and an emitted one runs too.

FRAME, NOTE = "data-dialog-frame", "in another of your tabs"


@pytest.fixture
def exporting(make_function):
    """An action that emits a script (a download) and does not wait for it."""
    return make_function("export_script_action", is_active=True, is_global=True)


async def script_drawn(page) -> str:
    """What the page was drawn of the script: its frame, or the note that another runs it."""
    while True:
        text = await page.receive_from(timeout=PATIENCE)
        if FRAME in text:
            assert "beforeend:#scripts" in text  # out of #dialogs: a redraw leaves it running
            return "frame"
        if NOTE in text:
            assert "<iframe" not in text and "/sandbox/execute/" not in text
            return "note"


async def test_a_script_runs_in_one_page_and_the_others_say_another_tab_runs_it(bob, action_chat):
    pages = [(await open_socket(bob, action_chat.id, tab=f"tab-{n}-abcdefgh"))[0] for n in (1, 2)]
    task = await run_action(bob, action_chat, "sandbox_probe_action")
    drawn = [await script_drawn(page) for page in pages]
    assert sorted(drawn) == ["frame", "note"]
    dialog = await the_dialog(action_chat)
    runner = pages[drawn.index("frame")]
    assert dialog.claimed_by == f"tab-{drawn.index('frame') + 1}-abcdefgh"
    result = {"value": {"cookie": None, "parent": None, "fetch": None, "value": 42}}
    await send(runner, action="dialog_answer", dialog_id=dialog.id, result=json.dumps(result))
    await asyncio.wait_for(task, PATIENCE)
    for page in pages:  # the note goes as the frame does
        await fragments_until(page, *gone(dialog))
        await page.disconnect()


async def test_a_page_that_closes_hands_its_unfinished_script_to_another(bob, action_chat):
    first, _, _ = await open_socket(bob, action_chat.id, tab="first-abcdefgh")
    task = await run_action(bob, action_chat, "sandbox_probe_action")
    assert await script_drawn(first) == "frame"
    second, _, _ = await open_socket(bob, action_chat.id, tab="second-abcdefgh")
    assert await script_drawn(second) == "note"
    await first.disconnect(code=1001)  # the tab closed
    dialog = await the_dialog(action_chat)
    drawn = await fragments_until(second, FRAME)
    assert any(f'id="dialog-{dialog.id}" hx-swap-oob="delete"' in text for text in drawn)
    assert (await the_dialog(action_chat)).claimed_by == "second-abcdefgh"
    error = json.dumps({"error": "stopped"})
    await send(second, action="dialog_answer", dialog_id=dialog.id, result=error)
    assert await asyncio.wait_for(task, PATIENCE) == {"got": {"error": "stopped"}}
    await second.disconnect()


async def test_a_page_that_reconnects_runs_its_script_on_without_starting_it_again(
    bob, action_chat
):
    page, _, _ = await open_socket(bob, action_chat.id, tab="same-tab-abcdefgh")
    task = await run_action(bob, action_chat, "sandbox_probe_action")
    assert await script_drawn(page) == "frame"
    dialog = await the_dialog(action_chat)
    await page.disconnect(code=1006)  # the connection dropped: the page retries
    again, _, _ = await open_socket(bob, action_chat.id, tab="same-tab-abcdefgh")
    drawn = (await fragments_until(again, 'id="dialogs"'))[-1]
    assert f'data-running="{dialog.id}"' in drawn and FRAME not in drawn and NOTE not in drawn
    assert await again.receive_nothing(timeout=0.5)  # no second frame: it runs on
    await send(again, action="dialog_answer", dialog_id=dialog.id, result='{"value": 1}')
    assert await asyncio.wait_for(task, PATIENCE) == {"got": 1}
    await again.disconnect()


async def test_an_emitted_script_runs_on_a_page_and_nothing_waits_for_its_value(
    bob, action_chat, exporting
):
    page, _, _ = await open_socket(bob, action_chat.id, tab="export-abcdefgh")
    task = await run_action(bob, action_chat, "export_script_action")
    await asyncio.wait_for(task, PATIENCE)  # the action ended: the script is the page's
    assert await script_drawn(page) == "frame"
    dialog = await the_dialog(action_chat)
    assert (dialog.kind, dialog.emitted, dialog.status) == ("execute", True, DialogStatus.PENDING)
    assert "answer.txt" in dialog.code
    await send(page, action="dialog_answer", dialog_id=dialog.id, result='{"value": null}')
    await fragments_until(page, *gone(dialog))
    assert (await the_dialog(action_chat)).status == DialogStatus.ANSWERED
    await page.disconnect()


async def test_an_emitted_script_waits_for_the_chat_to_be_opened(bob, action_chat, exporting):
    await asyncio.wait_for(await run_action(bob, action_chat, "export_script_action"), PATIENCE)
    page, _, _ = await open_socket(bob, action_chat.id, tab="later-abcdefgh")
    assert await script_drawn(page) == "frame"
    await page.disconnect()


async def test_over_the_api_an_emitted_script_with_no_page_open_is_only_an_event(
    bob, action_chat, exporting
):
    body = {"model": "asking_pipe", "messages": [], "chat_id": action_chat.id, "id": "a1"}
    req = await aprepare_action(user=bob, action_id="export_script_action", body=body)
    await asyncio.wait_for(perform_action(req), PATIENCE)
    assert not await Dialog.objects.aexists()
    # Still an event the API client gets (with its script), and nothing else.
    [script] = [event for event in req.recorder.events if event.type == "execute"]
    assert "answer.txt" in script.data["code"]


# Over the API with no chat: answered at once, as before.


async def test_without_a_chat_a_question_is_answered_at_once_with_no_session(bob, asking):
    client = AsyncClient()
    await client.aforce_login(bob)
    body = {"model": "asking_pipe", "messages": [{"role": "user", "content": "hi"}]}
    response = await client.post("/api/chat/completions", body, content_type="application/json")
    assert response.status_code == 200
    content = response.json()["choices"][0]["message"]["content"]
    assert content == f"Asking. You said: {NO_SESSION!r}"
    assert not await Dialog.objects.aexists()


async def test_over_the_api_a_request_naming_a_chat_asks_the_page_that_is_open(bob, chat):
    page, _, _ = await open_socket(bob, chat.id)
    client = AsyncClient()
    await client.aforce_login(bob)
    body = {
        "model": "asking_pipe",
        "messages": [{"role": "user", "content": "hi"}],
        "chat_id": chat.id,
        "id": "from-api",
    }
    posted = asyncio.create_task(
        client.post("/api/chat/completions", body, content_type="application/json")
    )
    await fragments_until(page, "<dialog", ASKED)
    dialog = await the_dialog(chat)
    await send(page, action="dialog_answer", dialog_id=dialog.id, answer="Lin")
    response = await asyncio.wait_for(posted, PATIENCE)
    assert response.json()["choices"][0]["message"]["content"] == "Asking. You said: 'Lin'"
    await page.disconnect()


async def test_over_the_api_an_action_on_a_chat_no_page_shows_is_answered_at_once(bob, action_chat):
    task = await run_action(bob, action_chat, "confirm_echo_action", from_page=False)
    assert await asyncio.wait_for(task, PATIENCE) == {"confirmed": NO_SESSION}
    assert not await Dialog.objects.aexists()


# The execute frame's route.


def test_the_execute_frame_is_served_without_a_session_under_its_own_csp(bob, action_chat):
    dialog = Dialog.objects.create(
        chat=action_chat,
        message_id="a1",
        user=bob,
        kind="execute",
        code="return document.title",
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    response = Client().get(execute_frame_url(dialog.id))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<script id="plugin-code" type="application/json">"return document.title"</script>' in (
        html
    )
    csp = response.headers["Content-Security-Policy"]
    assert "sandbox allow-scripts allow-downloads" in csp
    assert "connect-src 'none'" in csp and "'unsafe-eval'" in csp
    assert "frame-ancestors 'self'" in csp
    # It never touched a session: no cookie set, nothing varies by cookie.
    assert not response.cookies and "Cookie" not in response.headers.get("Vary", "")
    # The chat page itself frames only our own origin, and keeps no eval.
    page_csp = Client().get("/login/").headers["Content-Security-Policy"]
    assert "frame-src 'self'" in page_csp and "unsafe-eval" not in page_csp


def test_the_execute_frame_serves_only_a_pending_script_named_by_a_valid_token(bob, action_chat):
    dialog = Dialog.objects.create(
        chat=action_chat,
        message_id="a1",
        user=bob,
        kind="execute",
        code="return 1",
        status=DialogStatus.ANSWERED,
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    assert Client().get(execute_frame_url(dialog.id)).status_code == 404
    assert Client().get(f"/sandbox/execute/{dialog.id}/").status_code == 404  # unsigned


# The services: races, expiry, wake-ups, timeouts.


def pending_dialog(chat, user, **fields) -> Dialog:
    values = {
        "message_id": "a1",
        "kind": "input",
        "expires_at": timezone.now() + timedelta(minutes=5),
    }
    return Dialog.objects.create(chat=chat, user=user, **(values | fields))


def test_of_two_answers_at_once_exactly_one_wins(bob, action_chat):
    dialog = pending_dialog(action_chat, bob)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def answer(text: str) -> None:
        start.wait()
        try:
            dialog_answer(user=bob, dialog_id=dialog.id, answer=text)
            outcomes.append(f"won:{text}")
        except ValidationError as exc:
            outcomes.append(exc.code)
        finally:
            from django.db import connection

            connection.close()

    threads = [threading.Thread(target=answer, args=(text,)) for text in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o.split(":")[0] for o in outcomes) == ["dialog_closed", "won"]
    dialog.refresh_from_db()
    winner = next(o for o in outcomes if o.startswith("won:")).split(":")[1]
    assert (dialog.status, dialog.answer) == (DialogStatus.ANSWERED, winner)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        pytest.param({"status": DialogStatus.CANCELLED}, "dialog_closed", id="cancelled"),
        pytest.param({"status": DialogStatus.EXPIRED}, "dialog_closed", id="expired"),
        pytest.param(
            {"expires_at": timezone.now() - timedelta(seconds=1)}, "dialog_closed", id="time-up"
        ),
    ],
)
def test_a_dialog_that_is_not_open_refuses_answers(bob, action_chat, fields, code):
    dialog = pending_dialog(action_chat, bob, **fields)
    with pytest.raises(ValidationError) as refused:
        dialog_answer(user=bob, dialog_id=dialog.id, answer="late")
    assert refused.value.code == code


def test_answers_must_fit_the_dialog_and_its_owner(bob, outsider, action_chat):
    dialog = pending_dialog(action_chat, bob)
    with pytest.raises(ValidationError) as refused:
        dialog_answer(user=bob, dialog_id=dialog.id, answer={"not": "text"})
    assert refused.value.code == "invalid_answer"
    with pytest.raises(Dialog.DoesNotExist):
        dialog_answer(user=outsider, dialog_id=dialog.id, answer="mine now")
    with pytest.raises(Dialog.DoesNotExist):  # of another chat than the page's
        dialog_answer(user=bob, dialog_id=dialog.id, answer="x", chat_id="another-chat")
    confirmation = pending_dialog(action_chat, bob, kind="confirmation")
    assert dialog_answer(user=bob, dialog_id=confirmation.id, answer="anything").answer is True


def test_reading_a_chats_dialogs_expires_those_nobody_can_answer(bob, action_chat):
    open_one = pending_dialog(action_chat, bob)
    time_up = pending_dialog(action_chat, bob, expires_at=timezone.now() - timedelta(seconds=1))
    # A run's question whose run stopped streaming (its server went away).
    orphan = pending_dialog(action_chat, bob, runner="gone-runner")
    assert [d.id for d in dialogs_pending_for(user=bob, chat_id=action_chat.id)] == [open_one.id]
    for dialog in (time_up, orphan):
        dialog.refresh_from_db()
        assert dialog.status == DialogStatus.EXPIRED


def test_a_functions_frontmatter_may_name_its_dialog_timeout(make_function, settings):
    settings.FNPLATFORM_DIALOG_TIMEOUT_SECONDS = 300
    source = (
        '"""\ntitle: Quick\ndialog_timeout: 12.5\n"""\n'
        "class Action:\n    async def action(self, body):\n        return None\n"
    )
    make_function("quick_action", content=source)
    make_function("confirm_echo_action")
    assert dialog_timeout_for("quick_action") == 12.5
    assert dialog_timeout_for("confirm_echo_action") == 300
    assert dialog_timeout_for("no_such_function") == 300


async def listener(chat_id: str) -> str:
    """A channel in the chat's group, as a page's consumer would be."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(broadcast.chat_group(chat_id), channel)
    return channel


async def opened(channel: str) -> dict:
    """The next `dialog.opened` the channel gets."""
    while (message := await asyncio.wait_for(get_channel_layer().receive(channel), PATIENCE))[
        "type"
    ] != "dialog.opened":
        pass
    return message


async def ask_in_background(bob, chat, raw: dict) -> tuple[asyncio.Task, Dialog]:
    """dialog_ask in a task, and its dialog once stored (and told)."""
    told = await listener(chat.id)
    task = asyncio.create_task(
        dialog_ask(
            user_id=bob.pk,
            chat_id=chat.id,
            message_id="a1",
            function_id="asking_pipe",
            event=parse_event(raw),
        )
    )
    await opened(told)
    return task, await the_dialog(chat)


async def test_a_waiter_in_another_process_is_woken_over_the_channel_layer(
    bob, action_chat, monkeypatch
):
    task, dialog = await ask_in_background(bob, action_chat, {"type": "input", "data": {}})
    assert dialog.waiter  # the channel of the listener of the process that waits
    # The answer is taken in a process that holds no waiter of it: it sends the wake-up.
    sent: list[tuple[str, dict]] = []
    layer = get_channel_layer()
    real_send = layer.send

    async def spy(channel, message):
        sent.append((channel, message))
        await real_send(channel, message)

    monkeypatch.setattr(dialogs, "wake_local", lambda dialog_id: False)
    monkeypatch.setattr(layer, "send", spy)
    await sync_to_async(dialog_answer)(user=bob, dialog_id=dialog.id, answer="from afar")
    assert await asyncio.wait_for(task, PATIENCE) == "from afar"
    wake_ups = [(channel, m) for channel, m in sent if m["type"] == "dialog.answered"]
    assert wake_ups == [(dialog.waiter, {"type": "dialog.answered", "dialog_id": dialog.id})]


async def test_a_password_answer_reaches_the_plugin_and_is_not_kept(bob, action_chat):
    raw = {"type": "input", "data": {"title": "Key?", "type": "password"}}
    task, dialog = await ask_in_background(bob, action_chat, raw)
    assert dialog.input_type == "password"
    await sync_to_async(dialog_answer)(user=bob, dialog_id=dialog.id, answer="s3cret")
    assert await asyncio.wait_for(task, PATIENCE) == "s3cret"
    dialog = await the_dialog(action_chat)
    assert (dialog.status, dialog.answer) == (DialogStatus.ANSWERED, None)


async def test_a_cancelled_wait_expires_its_dialog(bob, action_chat):
    task, _ = await ask_in_background(bob, action_chat, {"type": "confirmation", "data": {}})
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(asyncio.gather(*dialogs._background), PATIENCE)  # its clean-up
    assert (await the_dialog(action_chat)).status == DialogStatus.EXPIRED
