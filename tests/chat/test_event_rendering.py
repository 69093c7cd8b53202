"""Each event type a plugin emits, on the chat page: drawn over the socket as it is
emitted (its fragment), saved with its message (its stored form), and drawn the same
from the row once the answer ended and when the page is loaded again. Then the two
routes events link to: an embed's sandbox (no session) and a file's download (its
owner's only).

The pipe (tests/plugins/event_script_pipe.py) emits what the user's message lists,
then waits until the test opens its gate (tests.support.gates): what the page got
before that was drawn live, from the events alone.
"""

import json
import logging
import re
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.db import SessionStore
from django.test import AsyncClient, Client

from chat.models import Chat, File, Message
from chat.pages import dom_key
from chat.sandbox import embed_src
from chat.services.chats import chat_create
from tests.chat.test_consumers import (
    answers,
    fragments_until,
    open_socket,
    send,
    until_finished,
)

pytestmark = pytest.mark.django_db(transaction=True)

GATE = "events"
MOON = {
    "source": {"name": "Moon facts", "url": "https://example.org/moon", "id": "moon"},
    "document": ["The Moon is 384,400 km away."],
    "metadata": [{"source": "moon"}],
}
TIDES = {"source": {"name": "Tides handbook"}, "document": ["Tides follow the Moon."]}
CHART = "<h2>Chart</h2><script>document.body.append('drawn')</script>"


@pytest.fixture
def script(make_function):
    return make_function("event_script_pipe", is_active=True)


@pytest.fixture
def chat(bob, script):
    return chat_create(user=bob, document={"title": "Events", "models": ["event_script_pipe"]})


@pytest.fixture
def uploads(tmp_path, monkeypatch):
    """The upload folder stored files live in, a temporary one."""
    import importlib

    config = importlib.import_module("open_webui.config")
    folder = tmp_path / "uploads"
    folder.mkdir()
    monkeypatch.setattr(config, "UPLOAD_DIR", folder)
    return folder


async def page(user, chat):
    socket, connected, _ = await open_socket(user, chat.id)
    assert connected
    return socket


async def emit(socket, events: list[dict], *, answer: str = "", after: list | None = None):
    """Have the pipe emit `events`, then wait for the gate (then `after`, `answer`)."""
    order = {"events": events, "gate": GATE, "after": after or [], "answer": answer}
    await send(socket, action="send", content=json.dumps(order))


async def finish(socket, gates) -> str:
    """Let the pipe end; the thread as the page draws it then (from the row)."""
    gates.open_gate(GATE)
    return (await until_finished(socket))[-1]


async def reloaded(user, chat) -> str:
    client = AsyncClient()
    await client.aforce_login(user)
    response = await client.get(f"/chat/c/{chat.id}/")
    assert response.status_code == 200
    return response.content.decode()


async def the_answer(chat) -> Message:
    [answer] = await answers(chat)
    return answer


def drawn(fragments: list[str], element_id: str) -> str:
    """The last fragment that swaps in the element of this id prefix on its own (not
    the whole thread, which holds the user's message: the script, as text)."""
    return next(
        f for f in reversed(fragments) if f'id="{element_id}' in f and 'id="thread"' not in f
    )


# The answer's text: message, chat:message:delta, chat:message, replace.


async def test_message_and_its_alias_add_to_the_answer(bob, chat, gates):
    socket = await page(bob, chat)
    added = [
        {"type": "message", "data": {"content": "Hello"}},
        {"type": "chat:message:delta", "data": {"content": " there"}},
    ]
    await emit(socket, added)
    live = await fragments_until(socket, "beforeend:#tail-", "there")
    assert live[-1].startswith("<span")  # appended as text to the answer's tail
    final = await finish(socket, gates)
    assert (await the_answer(chat)).content == "Hello there"
    for html in (final, await reloaded(bob, chat)):
        assert "<p>Hello there</p>" in html
    await socket.disconnect()


async def test_replace_and_its_alias_replace_the_answer(bob, chat, gates):
    socket = await page(bob, chat)
    replaced = [
        {"type": "chat:message", "data": {"content": "A draft"}},
        {"type": "replace", "data": {"content": "The final text"}},
    ]
    await emit(socket, replaced)
    live = await fragments_until(socket, 'id="body-', "<p>The final text</p>")
    assert 'hx-swap-oob="true"' in live[-1]
    final = await finish(socket, gates)
    assert (await the_answer(chat)).content == "The final text"
    for html in (final, await reloaded(bob, chat)):
        assert "<p>The final text</p>" in html and "<p>A draft</p>" not in html
    await socket.disconnect()


# chat:completion.


async def test_a_completion_event_replaces_the_content_keeps_usage_and_adds_sources(
    bob, chat, gates
):
    socket = await page(bob, chat)
    usage = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    completion = {"content": "The Moon is far [1].", "usage": usage, "sources": [MOON]}
    await emit(
        socket,
        [
            {"type": "message", "data": {"content": "partial"}},
            {"type": "chat:completion", "data": {**completion, "done": True}},
        ],
    )
    live = await fragments_until(socket, 'id="body-', "<p>The Moon is far")
    assert 'class="citation-ref"' in live[-1]  # [1] links to the source, live
    sources = drawn(await fragments_until(socket, 'id="sources-', ">Moon facts</a>"), "sources-")
    assert ">Moon facts</a>" in sources
    final = await finish(socket, gates)
    answer = await the_answer(chat)
    assert (answer.content, answer.usage) == ("The Moon is far [1].", usage)
    assert [s["source"]["name"] for s in answer.sources] == ["Moon facts"]
    assert answer.events == []  # folded into the columns, not kept twice
    for html in (final, await reloaded(bob, chat)):
        assert "12 tokens (5 in, 7 out)" in html and ">Moon facts</a>" in html
        assert "partial" not in html.split('id="body-')[-1].split("</article>")[0]
    await socket.disconnect()


async def test_a_completion_event_with_an_error_fails_the_message(bob, chat, gates):
    socket = await page(bob, chat)
    await emit(socket, [{"type": "chat:completion", "data": {"error": {"message": "Down"}}}])
    live = drawn(await fragments_until(socket, 'id="error-', 'role="alert">Down'), "error-")
    assert '<p class="message-error" role="alert">Down</p>' in live
    final = await finish(socket, gates)
    assert (await the_answer(chat)).error == {"content": "Down"}
    for html in (final, await reloaded(bob, chat)):
        assert '<p class="message-error" role="alert">Down</p>' in html
    await socket.disconnect()


# citation and source.


async def test_sources_are_listed_under_the_answer_and_its_references_link_to_them(
    bob, chat, gates
):
    socket = await page(bob, chat)
    await emit(
        socket,
        [{"type": "citation", "data": MOON}, {"type": "source", "data": TIDES}],
        answer="It is far [1]; the tides follow it [2], not [3].",
    )
    live = drawn(
        await fragments_until(socket, 'id="sources-', '<span class="source-name">Tides'), "sources-"
    )
    assert 'hx-swap-oob="true"' in live
    assert '<a href="https://example.org/moon" rel="noopener noreferrer nofollow"' in live
    assert ">Moon facts</a>" in live and '<span class="source-name">Tides handbook</span>' in live
    assert "<summary>Cited text</summary>" in live and "384,400 km away." in live
    final = await finish(socket, gates)
    answer = await the_answer(chat)
    assert [s["source"]["name"] for s in answer.sources] == ["Moon facts", "Tides handbook"]
    key = dom_key(answer.message_id)
    for html in (final, await reloaded(bob, chat)):
        for n in (1, 2):
            assert f'<li id="source-{key}-{n}" value="{n}">' in html
            assert f'<a href="#source-{key}-{n}"' in html  # the inline [n]
        assert "not [3]." in html  # no such source: left as written
    await socket.disconnect()


# notification.


async def test_notifications_are_toasts_by_level_shown_live_and_never_stored(bob, chat, gates):
    socket = await page(bob, chat)
    levels = ["info", "success", "warning", "error"]
    notes = [
        {"type": "notification", "data": {"type": level, "content": f"A {level} note"}}
        for level in levels
    ]
    await emit(socket, notes)
    live = await fragments_until(socket, "data-toast", "A error note")
    toasts = [f for f in live if "data-toast" in f]
    assert len(toasts) == 4
    for level, toast in zip(levels, toasts, strict=True):
        region = "toast-alerts" if level == "error" else "toasts"
        assert toast.startswith(f'<div hx-swap-oob="beforeend:#{region}">')
        assert f'class="toast {level}"' in toast and f"A {level} note" in toast
        assert 'aria-label="Dismiss notification"' in toast
    final = await finish(socket, gates)
    assert (await the_answer(chat)).events == []  # Open WebUI keeps none either
    for html in (final, await reloaded(bob, chat)):
        assert "data-toast-dismiss" not in html
    page_html = await reloaded(bob, chat)
    assert '<div id="toasts" class="toasts" role="status" aria-live="polite">' in page_html
    assert '<div id="toast-alerts" class="toasts" role="alert"' in page_html
    await socket.disconnect()


# files and chat:message:files.


async def test_files_are_listed_and_a_stored_one_links_to_its_download(bob, chat, gates, uploads):
    (uploads / "r1_report.txt").write_text("the report")
    await File.objects.acreate(id="r1", user=bob, filename="report.txt", path="r1_report.txt")
    socket = await page(bob, chat)
    stored = {"type": "file", "id": "r1", "name": "report.txt", "url": "/api/v1/files/r1"}
    files = [
        stored,
        {"type": "image", "url": "https://example.org/chart.png", "name": "chart.png"},
        {"type": "file", "name": "elsewhere.txt", "url": "ftp://example.org/elsewhere.txt"},
    ]
    await emit(
        socket,
        [
            {"type": "files", "data": {"files": [stored]}},
            {"type": "chat:message:files", "data": {"files": files}},  # replaces them
        ],
    )
    live = drawn(
        await fragments_until(socket, 'id="files-', '<span class="file-name">elsewhere'), "files-"
    )
    assert '<a href="/chat/files/r1/" download>report.txt</a>' in live
    assert '<img class="file-image" src="https://example.org/chart.png"' in live
    assert '<span class="file-name">elsewhere.txt</span>' in live  # not a link: not http(s)
    final = await finish(socket, gates)
    assert (await the_answer(chat)).files == files
    for html in (final, await reloaded(bob, chat)):
        assert '<a href="/chat/files/r1/" download>report.txt</a>' in html
        assert "ftp://" not in html.split('id="files-')[-1].split("</section>")[0]
    await socket.disconnect()


# embeds and chat:message:embeds.


async def test_embeds_are_sandboxed_frames_loaded_from_the_row_never_inline(bob, chat, gates):
    socket = await page(bob, chat)
    await emit(
        socket,
        [
            {"type": "embeds", "data": {"embeds": [CHART]}},
            {"type": "chat:message:embeds", "data": {"embeds": ["https://example.org/widget"]}},
        ],
    )
    live = await fragments_until(socket, 'id="embeds-', 'src="https://example.org/widget"')
    frames = drawn(live, "embeds-")
    assert frames.count('sandbox="allow-scripts"') == 2 and "allow-same-origin" not in frames
    assert 'src="https://example.org/widget"' in frames
    [src] = re.findall(r'src="(/sandbox/embed/[^"]+/)"', frames)
    assert not any("<h2>Chart</h2>" in fragment for fragment in live)  # never inline
    # Drawn from the row: saved as it came, while the answer is still being written.
    response = await AsyncClient().get(src)
    assert response.status_code == 200 and "<h2>Chart</h2>" in response.content.decode()
    final = await finish(socket, gates)
    assert (await the_answer(chat)).embeds == [CHART, "https://example.org/widget"]
    for html in (final, await reloaded(bob, chat)):
        assert re.search(r'<iframe id="embed-[^"]+" class="embed" src="/sandbox/embed/', html)
        assert 'class="embed external" src="https://example.org/widget"' in html
        assert "<h2>Chart</h2>" not in html
    await socket.disconnect()


# chat:title and chat:tags.


async def test_a_title_and_tags_are_saved_as_emitted_and_shown_in_the_chat_list(bob, chat, gates):
    other = await sync_to_async(chat_create)(user=bob, document={"title": "Another"})
    socket, elsewhere = await page(bob, chat), await page(bob, other)
    await emit(
        socket,
        [
            {"type": "chat:title", "data": "Trip to the Moon"},
            {"type": "chat:tags", "data": ["space", "travel"]},
        ],
    )
    entry = f'id="entry-{dom_key(chat.id)}"'
    live = await fragments_until(socket, entry, '<li class="tag">travel')
    assert ">Trip to the Moon</a>" in live[-1] and '<li class="tag">space</li>' in live[-1]
    heading = drawn(live, "chat-title")
    assert '<h1 id="chat-title" class="chat-title" hx-swap-oob="true">Trip to the Moon</h1>' in (
        heading
    )
    # Every page of the owner redraws the chat's entry (its own heading stays).
    other_page = await fragments_until(elsewhere, entry, '<li class="tag">travel')
    assert not any('id="chat-title"' in f for f in other_page)
    # Saved as emitted: the answer is still being written.
    named = await Chat.objects.aget(pk=chat.pk)
    assert (named.title, named.meta["tags"]) == ("Trip to the Moon", ["space", "travel"])
    await finish(socket, gates)
    html = await reloaded(bob, chat)
    assert "<title>Trip to the Moon · fnplatform</title>" in html
    assert '<h1 id="chat-title" class="chat-title">Trip to the Moon</h1>' in html
    assert '<ul class="tags" aria-label="Tags of Trip to the Moon">' in html
    assert '<li class="tag">space</li><li class="tag">travel</li>' in html
    await socket.disconnect()
    await elsewhere.disconnect()


# error and chat:message:error.


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({"type": "error", "data": {"description": "The key is wrong"}}, id="error"),
        pytest.param(
            {"type": "chat:message:error", "data": {"error": {"content": "The key is wrong"}}},
            id="chat:message:error",
        ),
    ],
)
async def test_an_error_event_shows_on_its_message(bob, chat, gates, event):
    socket = await page(bob, chat)
    await emit(socket, [event])
    live = drawn(
        await fragments_until(socket, 'id="error-', 'role="alert">The key is wrong'), "error-"
    )
    assert '<p class="message-error" role="alert">The key is wrong</p>' in live
    final = await finish(socket, gates)
    assert (await the_answer(chat)).error == {"content": "The key is wrong"}
    for html in (final, await reloaded(bob, chat)):
        assert '<p class="message-error" role="alert">The key is wrong</p>' in html
    await socket.disconnect()


# Types nobody knows.


async def test_an_unknown_event_is_kept_logged_once_and_draws_nothing(bob, chat, gates, caplog):
    caplog.set_level(logging.INFO, logger="functions.services.events")
    socket = await page(bob, chat)
    unknown = {"type": "x-weather:radar", "data": {"frame": "RADAR-7"}}
    status = {"type": "status", "data": {"description": "after it", "done": True}}
    await emit(socket, [unknown, status])
    live = await fragments_until(socket, 'id="status-', 'role="status">after it')
    assert not any("RADAR-7" in f for f in live if 'id="thread"' not in f)
    await finish(socket, gates)
    answer = await the_answer(chat)
    assert answer.events[0] == unknown
    logged = [r.getMessage() for r in caplog.records if "x-weather:radar" in r.getMessage()]
    assert logged == ["An event of unknown type 'x-weather:radar': kept, not shown"]
    assert "after it" in await reloaded(bob, chat)
    await socket.disconnect()


# status (drawn since the chat pages began; kept).


async def test_a_status_line_is_drawn_live_and_kept_in_its_history(bob, chat, gates):
    socket = await page(bob, chat)
    await emit(socket, [{"type": "status", "data": {"description": "Searching", "done": False}}])
    live = drawn(await fragments_until(socket, 'id="status-', 'role="status">Searching'), "status-")
    assert 'role="status">Searching</p>' in live
    final = await finish(socket, gates)
    assert (await the_answer(chat)).events == [
        {"type": "status", "data": {"description": "Searching", "done": False, "hidden": None}}
    ]
    for html in (final, await reloaded(bob, chat)):
        assert "Status history (1)" in html and "<li>Searching</li>" in html
    await socket.disconnect()


# An action's events: the same drawing (message.updated), its toasts, its names.

NOISY_ACTION = """
class Action:
    async def action(self, body, __event_emitter__=None):
        note = {"type": "warning", "content": "Careful now"}
        await __event_emitter__({"type": "notification", "data": note})
        await __event_emitter__({"type": "chat:title", "data": "Named by an action"})
        return "<p>card</p>", {"Content-Disposition": "inline"}
"""


async def test_an_actions_toast_title_and_html_reach_the_page(bob, chat, gates, make_function):
    from chat.services.actions import aprepare_action, perform_action

    await sync_to_async(make_function)(
        "noisy_action", content=NOISY_ACTION, is_active=True, is_global=True
    )
    gates.open_gate(GATE)
    socket = await page(bob, chat)
    await emit(socket, [])
    await until_finished(socket)
    answer = await the_answer(chat)
    body = {"model": "event_script_pipe", "chat_id": chat.id, "id": answer.message_id}
    req = await aprepare_action(user=bob, action_id="noisy_action", body=body)
    assert await perform_action(req) == {"status": True, "embeds": ["<p>card</p>"]}
    got = await fragments_until(socket, f'id="msg-{dom_key(answer.message_id)}"', "/sandbox/")
    assert any("beforeend:#toasts" in f and "Careful now" in f for f in got)
    assert any(">Named by an action</a>" in f for f in got)
    assert (await Chat.objects.aget(pk=chat.pk)).title == "Named by an action"
    [src] = re.findall(r'src="(/sandbox/embed/[^"]+/)"', got[-1])
    assert (await AsyncClient().get(src)).content.decode().startswith("<p>card</p>")
    await socket.disconnect()


# The embed's route: no session, its own policy, a token nobody can forge.


@pytest.fixture
def embedded(bob):
    """A saved answer with one HTML embed; its frame's URL."""
    document = {
        "title": "Embedded",
        "history": {
            "currentId": "a1",
            "messages": {
                "u1": {"id": "u1", "parentId": None, "role": "user", "content": "chart"},
                "a1": {
                    "id": "a1",
                    "parentId": "u1",
                    "role": "assistant",
                    "content": "Here.",
                    "embeds": [CHART],
                    "done": True,
                },
            },
        },
    }
    chat = chat_create(user=bob, document=document)
    return chat, embed_src(chat_id=chat.id, message_id="a1", embed=CHART)


def test_an_embed_is_served_without_a_session_with_a_policy_for_untrusted_html(embedded):
    _, src = embedded
    response = Client().get(src)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    body = response.content.decode()
    assert body.startswith(CHART) and "fnplatform:embed-size" in body  # and its sizer
    policy = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["sandbox"] == "allow-scripts"  # opaque even when opened on its own
    assert directives["frame-ancestors"] == "'self'"
    assert "'unsafe-inline'" in directives["script-src"]
    assert "'self'" not in directives["script-src"] + directives["connect-src"]
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert response["Cache-Control"] == "private, no-store"
    assert response["Referrer-Policy"] == "no-referrer"
    assert "Set-Cookie" not in response and "Vary" not in response


def test_an_embed_never_reads_the_session_of_a_signed_in_caller(embedded, bob):
    _, src = embedded
    client = Client()
    client.force_login(bob)
    with mock.patch.object(SessionStore, "load", side_effect=AssertionError("session read")):
        response = client.get(src)
    assert response.status_code == 200 and "Vary" not in response


def test_a_bad_forged_expired_or_stale_embed_token_is_a_404(embedded, settings):
    chat, src = embedded
    token = src.split("/")[-2]
    client = Client()
    for bad in ("nope", token[:-2] + ("AA" if token[-2:] != "AA" else "BB")):
        response = client.get(f"/sandbox/embed/{bad}/")
        assert response.status_code == 404
        assert response["Content-Security-Policy"].startswith("sandbox allow-scripts")
    other = embed_src(chat_id=chat.id, message_id="a1", embed="<p>never stored</p>")
    assert client.get(other).status_code == 404
    settings.CHAT_EMBED_TOKEN_SECONDS = -1
    assert client.get(src).status_code == 404


def test_the_chat_page_may_frame_our_own_pages_and_https_only(bob_client, chat):
    policy = bob_client.get(f"/chat/c/{chat.id}/")["Content-Security-Policy"]
    frames = next(d for d in policy.split(";") if d.strip().startswith("frame-src"))
    assert frames.split()[1:] == ["'self'", "https:"]
    assert "frame-ancestors 'none'" in policy  # nobody frames the page itself


# A file's download: its owner's only.


def test_a_file_is_downloaded_by_its_owner_only(bob, alice, outsider, uploads):
    (uploads / "r1_report.txt").write_text("the report")
    File.objects.create(
        id="r1", user=bob, filename="report.txt", path="r1_report.txt", meta={"name": "report.txt"}
    )
    File.objects.create(id="gone", user=bob, filename="gone.txt", path="gone.txt")
    client = Client()
    client.force_login(bob)
    response = client.get("/chat/files/r1/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"the report"
    assert response["Content-Disposition"] == "attachment; filename*=UTF-8''report.txt"
    assert response["Content-Security-Policy"] == "sandbox"
    assert response["X-Content-Type-Options"] == "nosniff"
    inline = client.get("/chat/files/r1/?inline=1")
    assert inline["Content-Disposition"].startswith("inline;")
    assert client.get("/chat/files/gone/").status_code == 404  # its content is not stored
    assert client.get("/chat/files/nope/").status_code == 404
    for someone_else in (outsider, alice):  # staff too: it is bob's message's file
        client.force_login(someone_else)
        assert client.get("/chat/files/r1/").status_code == 404
    client.logout()
    assert client.get("/chat/files/r1/").status_code == 302  # to the login page
