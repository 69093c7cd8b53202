"""What an action (a message button) does to the message it was clicked under.

Why this exists: Open WebUI calls an action with the chat (`chat_id`) and the
message (`id`) its button is under, and the action's `__event_emitter__` then does
to that message what a run's does to its answer: each event shows at once on the
user's open pages and changes the stored message ("message" adds to its content,
"replace" replaces it, a status joins its statusHistory, sources and embeds are
added, files set). Plugins rely on it (an action that rewrites or annotates a
reply). A completion has a run for that (chat.services.live_run); an action has
none, so this module does it for one action call.

When the action's body names one of the caller's own chats and an assistant
message in it, `follow_action` tees the action's emitter and caller (as LiveRun
tees a run's), folds each event the recorder takes into a Turn started from the
message as it is stored (chat.services.turn: the same meaning as in a run),
publishes the message as it then is to the chat's group as it happens
(`message.updated`, see chat.services.broadcast), and `MessageEvents.save()` stores the
message once, when the action ended (failed or not: what was emitted is kept),
through chat.services.chats.message_apply; an embed is stored as it comes too, since
its frame loads it from the row (chat.sandbox), and a chat:title or chat:tags names
the chat at once (chat.services.chat_names). The message's status is never changed.

Anything else is not followed and the action runs as it always did, its events only
recorded: no chat or message named (no thread hop then), a temporary chat
("local:..."), another user's chat, a missing message, a user's message, or one a
run is writing (the run owns it).

chat.services.actions.perform_action calls `follow_action`, so every door that
runs actions (the API's `POST /api/chat/actions/{id}`, the chat pages) gets it.
"""

import asyncio
import copy
import logging
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async

from chat.models import Chat, Message, MessageStatus
from chat.selectors import chat_to_answer_in, message_get
from chat.services import broadcast
from chat.services.chat_names import name_chat_from
from chat.services.chats import EVENT_COLUMNS, message_apply
from chat.services.dialogs import DialogAsker, hear_events
from chat.services.history import effective_status
from chat.services.turn import Change, Turn
from functions.services.context import CallContext
from functions.services.events import EventRecorder

log = logging.getLogger(__name__)


def _list(value: Any) -> list:
    return list(value) if isinstance(value, list) else []


@dataclass(eq=False)
class MessageEvents:
    """One action's events on one saved message: folded, published, then saved."""

    chat: Chat
    message_id: str
    turn: Turn
    # The message's columns when the action started: only what its events changed
    # is saved, so edits made meanwhile to the other columns are kept.
    start: dict[str, Any]
    recorder: EventRecorder | None = None
    # How many of the recorder's events were taken.
    seen: int = 0
    # The action's questions (__event_call__ dialogs) about the message.
    asker: DialogAsker | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def of(cls, chat: Chat, message: Message) -> "MessageEvents":
        turn = Turn(
            content=message.content,
            events=_list(message.events),
            sources=_list(message.sources),
            files=_list(message.files),
            embeds=_list(message.embeds),
            # Not changed by events unless they say so; drawn as they are meanwhile.
            usage=message.usage if isinstance(message.usage, dict) else None,
            error=message.error if isinstance(message.error, dict) else None,
        )
        start = {key: copy.deepcopy(getattr(message, key)) for key in EVENT_COLUMNS}
        return cls(chat=chat, message_id=message.message_id, turn=turn, start=start)

    def attach(
        self, context: CallContext, recorder: EventRecorder, *, only_if_open: bool = False
    ) -> None:
        """Hear each event as the recorder takes it (the action's emitter and caller);
        its questions ("input", "confirmation", "execute") become dialogs of the chat
        (chat.services.dialogs), answered on any of its pages (`only_if_open`: asked
        only when one is open, else answered as with no session)."""
        self.recorder = recorder
        self.asker = DialogAsker(
            user_id=self.chat.user_id,
            chat_id=self.chat.id,
            message_id=self.message_id,
            function_id=recorder.function_id,
            only_if_open=only_if_open,
        )
        hear_events(context, recorder, asker=self.asker, took=self.take)

    async def take(self) -> None:
        """Fold the events recorded since the last take, telling the chat's group of
        each, in the order they were recorded."""
        if self.recorder is None:
            return
        async with self._lock:
            events = self.recorder.events[self.seen :]
            self.seen += len(events)
            for event in events:
                change = self.turn.take_event(event)
                if event.type == "embeds":
                    # Its frame loads it from the row (chat.sandbox): stored before shown.
                    await self._store()
                await name_chat_from(event, chat_id=self.chat.id, user_id=self.chat.user_id)
                await self._tell(change)

    def changed(self) -> dict[str, Any]:
        """The columns the events changed, with their new values."""
        values = self.turn.values()
        return {k: v for k, v in values.items() if k in EVENT_COLUMNS and v != self.start[k]}

    async def save(self) -> Message | None:
        """Store what the events changed (nothing when they changed nothing); the
        message saved, or None. A failure to save is logged, not raised: the action's
        answer stands. Its dialogs still open expire (the action no longer waits)."""
        if self.asker is not None:
            await self.asker.close()
        await self.take()
        return await self._store()

    async def _store(self) -> Message | None:
        values = self.changed()
        if not values:
            return None
        try:
            return await sync_to_async(message_apply)(
                chat=self.chat, message_id=self.message_id, values=values
            )
        except Exception:
            log.exception("Could not save the action's events on message %s", self.message_id)
            return None

    # Publishing: the message as it now is (it has no run, so no deltas or seq).

    async def _tell(self, change: Change) -> None:
        if change.kind == "delta" and not change.value:
            return
        message = {
            "type": broadcast.MESSAGE_UPDATED,
            "chat_id": self.chat.id,
            "message_id": self.message_id,
            "seq": None,
            **self.turn.state(),
            "event": change.value if change.kind == "event" else None,
        }
        try:
            await broadcast.publish([broadcast.chat_group(self.chat.id)], message)
        except Exception:
            # The pages miss it (they see it saved); the action goes on.
            log.exception("Could not publish an event of message %s", self.message_id)


def message_events_for(*, user, chat_id: Any, message_id: Any) -> MessageEvents | None:
    """The MessageEvents of an assistant message in one of `user`'s own chats; None
    for anything else (no such chat or message, another user's chat, a temporary
    one, a user's message, one a run is writing)."""
    if not isinstance(message_id, str) or not message_id:
        return None
    try:
        chat = chat_to_answer_in(user=user, chat_id=chat_id)
    except Chat.DoesNotExist:
        return None  # another user's: as if there were no chat
    if chat is None:
        return None
    try:
        message = message_get(chat=chat, message_id=message_id)
    except Message.DoesNotExist:
        return None
    if message.role != "assistant" or effective_status(message) == MessageStatus.STREAMING:
        return None
    return MessageEvents.of(chat, message)


async def follow_action(
    *,
    user,
    body: dict[str, Any],
    context: CallContext,
    recorder: EventRecorder,
    only_if_open: bool = False,
) -> MessageEvents | None:
    """Have the action's events change the message its body names (`chat_id`, `id`),
    when it is an assistant message of one of the caller's own chats: tees the
    context's emitter and caller (its questions are dialogs of the chat; with
    `only_if_open`, a request over the API, only when a page of it is open). Call
    `save()` on what it returns when the action ended. None (and no query) when the
    body names no chat and message."""
    chat_id, message_id = body.get("chat_id"), body.get("id")
    if user is None or not chat_id or not message_id:
        return None
    events = await sync_to_async(message_events_for)(
        user=user, chat_id=chat_id, message_id=message_id
    )
    if events is not None:
        events.attach(context, recorder, only_if_open=only_if_open)
    return events
