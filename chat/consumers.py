"""The chat pages' socket: one connection per open chat page, signed in by session.

It only translates. Page to server (htmx's ws extension sends a form's fields as
JSON): `send` a message, `regenerate` the last answer, `edit` the last message and
send it anew, `stop`; each goes to chat.services.live, which runs the answer as a
task of the server (closing the tab does not stop it). Server to page: the runs'
messages on the chat's channel-layer group (chat.services.broadcast), drawn as
HTML fragments that htmx swaps in by id (`hx-swap-oob`): the thread when an answer
starts, text appended as it streams, the whole message when it ends.

Streaming stays cheap for the page: deltas are coalesced for FLUSH_SECONDS and
appended as plain text to the message's tail; the Markdown of the whole answer is
drawn again at most every RENDER_SECONDS, and once at its end. A page that joins
mid-run (a second tab, a reload, a reconnect) asks the run for a snapshot and
follows on from it (`seq` tells what it has seen).
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.template.loader import render_to_string
from django.utils.html import escape

from chat.dialogs import DialogSocket
from chat.models import Chat, Message, MessageStatus
from chat.pages import (
    EVENT_RENDERERS,
    LIVE_RENDERERS,
    MessageView,
    chat_filter_ids,
    chat_list_fragment,
    chat_model_id,
    chat_named_fragment,
    dom_key,
    message_fragment,
    render_message,
    sidebar_entry_fragment,
    thread_fragment,
)
from chat.selectors import chat_get_for, message_get, streaming_messages
from chat.services import broadcast
from chat.services.live import request_snapshots, start_answer, start_turn, stop_chat_runs
from chat.services.run import CompletionFailed
from fnplatform import state
from functions.services.plugins import PluginUnavailable
from functions.services.request import origin_from_scope
from functions.services.runtime import FilterAbort, HookError

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.05
RENDER_SECONDS = 0.5
# Close codes for a page signed out, or whose chat is gone or not its user's: htmx's
# socket does not retry them (it reconnects on 1006 and 1011-1013 only).
NOT_SIGNED_IN, NOT_FOUND = 4401, 4404
# What a page may ask for, and how much it may send.
MAX_CONTENT = 200_000
# A message's columns that plugins' events change, beside its content and events.
EVENT_PARTS = ("sources", "files", "embeds", "usage", "error")


@dataclass
class _Follow:
    """What this page has of one answer being written."""

    seq: int = 0
    content: str = ""
    events: list[dict] = field(default_factory=list)
    model: str = ""
    parent_id: str | None = None
    # The other columns plugins' events changed (sources, files, embeds, usage, error).
    columns: dict = field(default_factory=dict)
    # Waiting for the run's snapshot: its messages wait here, in order.
    pending: list[dict] | None = None
    tail: str = ""
    flush: asyncio.Task | None = None
    drawn_at: float = 0.0


class ChatConsumer(DialogSocket, AsyncJsonWebsocketConsumer):
    """The socket of one open chat page (its plugins' dialogs: chat.dialogs)."""

    chat_id: str = ""
    # Between a message saved and its answer started (the inlet filters run).
    preparing: bool = False

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.follows: dict[str, _Follow] = {}
        self.joined: list[str] = []
        self.ended: set[tuple] = set()
        if self.user is None or not self.user.is_authenticated:
            await self._refuse(NOT_SIGNED_IN)
            return
        chat_id = self.scope["url_route"]["kwargs"]["chat_id"]
        try:
            chat = await database_sync_to_async(chat_get_for)(user=self.user, id=chat_id)
        except Chat.DoesNotExist:
            await self._refuse(NOT_FOUND)
            return
        self.chat_id = chat.id
        # Groups first, then what is streaming: no run falls between the two.
        for group in (broadcast.chat_group(chat.id), broadcast.user_group(self.user.pk)):
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.append(group)
        await self.accept()
        await self._catch_up()

    async def _refuse(self, code: int) -> None:
        # Accepted, then closed with a code of our own: a handshake refused outright
        # reads as a dropped connection (1006), which the page would retry for ever.
        await self.accept()
        await self.close(code=code)

    async def _catch_up(self) -> None:
        """Draw the chat as it is now (an answer may have ended, or begun, since the page
        was rendered), then ask the runs still answering for what they have so far."""

        def running() -> list[tuple[str, str, str | None]]:
            messages = streaming_messages(chat_id=self.chat_id, user=self.user)
            return list(messages.values_list("message_id", "model", "parent__message_id"))

        for message_id, model, parent_id in await database_sync_to_async(running)():
            self.follows[message_id] = _Follow(model=model, parent_id=parent_id, pending=[])
        await self._send_thread()
        await self._send_dialogs()
        if self.follows:
            await request_snapshots(
                user=self.user, chat_id=self.chat_id, reply_channel=self.channel_name
            )

    async def disconnect(self, code: int) -> None:
        # The runs go on: they belong to the server, not to this socket.
        for follow in self.follows.values():
            if follow.flush is not None:
                follow.flush.cancel()
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        await self._release_scripts(code)

    # Page to server.

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        state.end_request()  # each message is a request of its own to the caches
        if not isinstance(content, dict):
            return
        handler = {
            "send": self._send_message,
            "edit": self._edit_message,
            "regenerate": self._regenerate,
            "stop": self._stop,
            "dialog_answer": self._dialog_answer,
        }.get(str(content.get("action")))
        if handler is None:
            await self._problem("The page asked for something unknown.")
            return
        try:
            await handler(content)
        except REFUSALS as exc:
            await self._refused(content, _reason(exc))

    async def _refused(self, content: dict, reason: str) -> None:
        """Say why, and give the composer back what was typed: nothing is lost."""
        if content.get("action") in ("send", "edit"):
            await self._send_composer(text=str(content.get("content") or ""))
        await self._problem(reason)

    def _busy(self) -> bool:
        return self.preparing or bool(self.follows)

    async def _chat_settings(self) -> tuple[str, list[str]]:
        chat = await database_sync_to_async(chat_get_for)(user=self.user, id=self.chat_id)
        return chat_model_id(chat), chat_filter_ids(chat)

    def _text(self, content: dict) -> str:
        text = content.get("content")
        if not isinstance(text, str) or not text.strip():
            raise ValidationError("Write a message first.")
        if len(text) > MAX_CONTENT:
            raise ValidationError(f"A message has at most {MAX_CONTENT} characters.")
        return text

    async def _send_message(self, content: dict) -> None:
        await self._turn(content)

    async def _edit_message(self, content: dict) -> None:
        """Send an edited message anew: a sibling of the one edited, which stays in the
        chat's history (as Open WebUI keeps it)."""
        message = await self._message(content)
        if message.role != "user":
            raise ValidationError("Only your own messages can be edited.")
        parent = message.parent.message_id if message.parent_id else None
        await self._turn(content, parent_id=parent, root=parent is None)

    async def _turn(self, content: dict, parent_id: str | None = None, root: bool = False) -> None:
        if self._busy():
            raise ValidationError("Wait for the answer, or stop it, before sending.")
        text = self._text(content)
        model, filter_ids = await self._chat_settings()

        async def shown(message: Message) -> None:
            # The message shows at once, while the inlet filters prepare its answer.
            # (The socket reads its next request, a stop say, once the answer started.)
            self.preparing = True
            await self._send_thread()

        try:
            await start_turn(
                user=self.user,
                chat_id=self.chat_id,
                content=text,
                model=model,
                parent_id=parent_id,
                root=root,
                extra={"filter_ids": filter_ids},
                origin=origin_from_scope(self.scope),
                saved=shown,
            )
        except REFUSALS as exc:
            if not self.preparing:
                raise  # refused before it was stored: the composer gets the text back
            # The message is kept, its answer stored failed: the thread shows both.
            self.preparing = False
            await self._send_thread()
            await self._problem(_reason(exc))
        finally:
            self.preparing = False

    async def _regenerate(self, content: dict) -> None:
        """Answer the last answer's question anew (a sibling answer)."""
        if self._busy():
            raise ValidationError("Wait for the answer, or stop it, before regenerating.")
        message = await self._message(content)
        if message.role != "assistant" or not message.parent_id:
            raise ValidationError("Only an answer can be regenerated.")
        model, filter_ids = await self._chat_settings()
        await start_answer(
            user=self.user,
            chat_id=self.chat_id,
            user_message_id=message.parent.message_id,
            model=model or message.model,
            extra={"filter_ids": filter_ids},
            origin=origin_from_scope(self.scope),
        )

    async def _message(self, content: dict):
        def get():
            chat = chat_get_for(user=self.user, id=self.chat_id)
            message = message_get(chat=chat, message_id=str(content.get("message_id") or ""))
            _ = message.parent  # loaded here, not on the loop
            return message

        return await database_sync_to_async(get)()

    async def _stop(self, content: dict) -> None:
        await database_sync_to_async(stop_chat_runs)(user=self.user, chat_id=self.chat_id)

    # Server to page: the runs' messages (chat.services.broadcast).

    def _fresh(self, follow: _Follow, message: dict) -> bool:
        """Whether this run message is news (each comes once per group joined)."""
        seq = message.get("seq")
        if seq is None:
            return True
        if seq <= follow.seq:
            return False
        follow.seq = seq
        return True

    def _follow_for(self, message: dict) -> _Follow | None:
        """The page's follow of the message's answer; None when this message must wait
        for (or is older than) the snapshot."""
        follow = self.follows.get(message["message_id"])
        if follow is None:
            follow = self.follows[message["message_id"]] = _Follow()
        if follow.pending is not None:
            follow.pending.append(message)
            return None
        return follow if self._fresh(follow, message) else None

    async def run_started(self, message: dict) -> None:
        if message.get("chat_id") != self.chat_id:
            return
        follow = self._follow_for(message)
        if follow is None:
            return
        follow.model, follow.parent_id = message.get("model") or "", message.get("parent_id")
        follow.drawn_at = time.monotonic()
        await self._send_thread()

    async def run_snapshot(self, message: dict) -> None:
        follow = self.follows.get(message["message_id"])
        if follow is None or follow.pending is None:
            return
        waiting, follow.pending = follow.pending, None
        follow.seq = message.get("seq") or 0
        follow.content, follow.events = message.get("content") or "", message.get("events") or []
        follow.columns = {key: message.get(key) for key in EVENT_PARTS}
        await self._draw(message["message_id"], follow)
        for later in waiting:
            await self.dispatch(later)

    async def run_delta(self, message: dict) -> None:
        follow = self._follow_for(message)
        if follow is None:
            return
        text = str(message.get("content") or "")
        follow.content += text
        follow.tail += text
        if follow.flush is None:
            follow.flush = asyncio.create_task(self._flush_later(message["message_id"], follow))

    async def _flush_later(self, message_id: str, follow: _Follow) -> None:
        """Send what streamed in the last FLUSH_SECONDS as one fragment: the text
        appended to the tail, or the whole answer drawn anew every RENDER_SECONDS."""
        await asyncio.sleep(FLUSH_SECONDS)
        follow.flush = None
        if time.monotonic() - follow.drawn_at >= RENDER_SECONDS:
            await self._draw_content(message_id, follow)
            return
        text, follow.tail = follow.tail, ""
        if text:
            key = dom_key(message_id)
            fragment = f'<span hx-swap-oob="beforeend:#tail-{key}">{escape(text)}</span>'
            await self.send(text_data=fragment)

    async def run_content(self, message: dict) -> None:
        follow = self._follow_for(message)
        if follow is None:
            return
        follow.content = str(message.get("content") or "")
        await self._draw_content(message["message_id"], follow)

    async def run_event(self, message: dict) -> None:
        follow = self._follow_for(message)
        event = message.get("event") or {}
        if follow is None or not isinstance(event, dict):
            return
        await self._take_event(message["message_id"], follow, event, message.get("columns"))

    async def run_finished(self, message: dict) -> None:
        # It comes twice (the chat's group and the user's): drawn once.
        key = (message.get("chat_id"), message["message_id"], message.get("seq"))
        if message.get("seq") is not None and key in self.ended:
            return
        self.ended.add(key)
        if message.get("chat_id") != self.chat_id:
            await self._send_sidebar_entry(message.get("chat_id"))
            return
        follow = self.follows.pop(message["message_id"], None)
        if follow is not None and follow.flush is not None:
            follow.flush.cancel()
        # The final state, drawn from the row: its actions and buttons come with it.
        await self._send_thread()
        await self._send_sidebar_entry(self.chat_id)

    async def message_updated(self, message: dict) -> None:
        """A message no run writes changed (an action's event): draw it as it now is."""
        if message.get("chat_id") != self.chat_id or message["message_id"] in self.follows:
            return
        html = await database_sync_to_async(message_fragment)(
            user=self.user, chat_id=self.chat_id, message_id=message["message_id"], state=message
        )
        if html:
            await self.send(text_data=html)
        await self._draw_live_only(message.get("event"))

    # Drawing.

    def _view(self, message_id: str, follow: _Follow) -> MessageView:
        view = MessageView(
            message_id=message_id,
            role="assistant",
            model=follow.model,
            status=MessageStatus.STREAMING,
            content=follow.content,
            events=follow.events,
            parent_id=follow.parent_id,
            chat_id=self.chat_id,
        )
        return view.take(follow.columns)

    async def _draw(self, message_id: str, follow: _Follow) -> None:
        follow.tail, follow.drawn_at = "", time.monotonic()
        view = self._view(message_id, follow)
        html = await database_sync_to_async(_render_message)(view, self.chat_id)
        await self.send(text_data=html)

    async def _draw_content(self, message_id: str, follow: _Follow) -> None:
        if follow.flush is not None:
            follow.flush.cancel()
            follow.flush = None
        follow.tail, follow.drawn_at = "", time.monotonic()
        view = self._view(message_id, follow)
        html = render_to_string("chat/_message.html#content", {"m": view, "oob": True})
        await self.send(text_data=html)

    async def _send_thread(self) -> None:
        html = await database_sync_to_async(_render_thread)(self.user, self.chat_id, self._busy())
        await self.send(text_data=html)

    async def _send_composer(self, *, text: str = "") -> None:
        context = {"chat_id": self.chat_id, "content": text, "busy": self._busy(), "oob": True}
        await self.send(text_data=render_to_string("chat/chat.html#composer", context))

    async def _send_sidebar_entry(self, chat_id: Any) -> None:
        html = await database_sync_to_async(_render_entry)(self.user, chat_id, self.chat_id)
        if html:
            await self.send(text_data=html)

    async def _problem(self, reason: str) -> None:
        html = render_to_string("chat/_problem.html", {"message": reason, "oob": True})
        await self.send(text_data=html)

    # Plugins' events on the page: each type drawn by its renderer (chat.pages).

    async def _take_event(
        self, message_id: str, follow: _Follow, event: dict, columns: Any
    ) -> None:
        """Take a run's event and the columns it changed; draw what it changed."""
        columns = dict(columns) if isinstance(columns, dict) else {}
        content = columns.pop("content", None)
        follow.columns.update(columns)
        if content is not None:  # a chat:completion replaced the answer's text
            follow.content = str(content)
            await self._draw_content(message_id, follow)
        if event.get("type") not in LIVE_RENDERERS:
            follow.events.append(event)
        render = EVENT_RENDERERS.get(str(event.get("type")))
        if render is not None:
            view = self._view(message_id, follow)
            html = await database_sync_to_async(render)(view, event)
            if html:
                await self.send(text_data=html)

    async def _draw_live_only(self, event: Any) -> None:
        """An event drawn outside its message (a notification's toast), from an action."""
        render = LIVE_RENDERERS.get(event.get("type")) if isinstance(event, dict) else None
        html = render(None, event) if render is not None else ""
        if html:
            await self.send(text_data=html)

    async def chat_listed(self, message: dict) -> None:
        """One of the user's chats was made or deleted (in another tab, say): redraw
        the chat list; this page's own chat gone, say so (nothing here can be saved)."""
        html = await database_sync_to_async(chat_list_fragment)(user=self.user, active=self.chat_id)
        await self.send(text_data=html)
        if message.get("change") == "deleted" and message.get("chat_id") == self.chat_id:
            await self._problem("This chat was deleted.")

    async def chat_named(self, message: dict) -> None:
        """A plugin named one of the user's chats (saved already): redraw its entry in
        the chat list, and the heading when it is this page's chat."""
        html = await database_sync_to_async(chat_named_fragment)(
            user=self.user, chat_id=str(message.get("chat_id")), active=self.chat_id
        )
        if html:
            await self.send(text_data=html)


# What a page's request may be refused with: bad input, a chat or message gone, a
# model the user may not use or that cannot run, an inlet filter's refusal.
REFUSALS = (
    ValidationError,
    ObjectDoesNotExist,
    PermissionDenied,
    PluginUnavailable,
    FilterAbort,
    HookError,
    CompletionFailed,
)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return exc.messages[0]
    if isinstance(exc, FilterAbort | HookError):
        return str(exc.message or exc)
    return str(exc) or "That is not possible."


def _render_message(view: MessageView, chat_id: str) -> str:
    return render_message(view, chat_id=chat_id, oob=True)


def _render_thread(user, chat_id: str, busy: bool) -> str:
    return thread_fragment(user=user, chat_id=chat_id, busy=busy)


def _render_entry(user, chat_id: Any, active: str) -> str:
    return sidebar_entry_fragment(user=user, chat_id=str(chat_id), active=active)
