"""Server-owned runs: a completion that answers a chat message runs as a task of the
server, not of whoever asked, and its answer is saved as it streams.

Whoever starts a run (the chat API's completions with `chat_id` and `id`, the chat
pages' consumer) may go away: the run goes on to its end and its message ends
"done" with the whole answer. Its progress is published to its chat's group
(chat.services.broadcast lists the messages), so any number of pages follow it;
one that joins mid-run asks for a snapshot. Stops reach it from any process.

For doors:

- `chat_completion_run(user=, body=, origin=)`: what the completion door runs: a
  saved `LiveRun` when the body names the caller's chat (`chat_id`) and the answer's
  message id (`id`), a plain CompletionRun otherwise. Another user's chat is
  Chat.DoesNotExist (404) before anything runs.
- `start_chat_run(user=, body=, origin=)`: start answering body["id"] in the chat.
  Model, access and inlet errors are raised as completion_run raises them (the
  message is stored failed).
- `start_turn(...)`, `start_answer(...)`: the pages' send (a user's message, then
  its answer) and regenerate (a new answer to a user's message).
- `LiveRun.stream()` / `LiveRun.answer()`: for the requester, what CompletionRun
  gives (batches of chunk dicts / the whole chat.completion); `LiveRun.wait()`.
- `stop_chat_runs(user=, chat_id=)`: stop a chat's runs, in every process.
- `request_snapshots(user=, chat_id=, reply_channel=)`: have a chat's runs send a
  listener what they have so far (`run.snapshot`).

Saves are coalesced: one UPDATE at most every CHAT_RUN_SAVE_SECONDS while the
answer streams, and one at its end; the message's lease is renewed with each save
and by the run manager's heartbeat (chat.services.run_manager).
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings

from chat.models import Message, MessageStatus, new_id
from chat.selectors import (
    chat_document,
    chat_get_for,
    chat_to_answer_in,
    message_get,
    streaming_messages,
)
from chat.services import broadcast, tasks
from chat.services.answers import answer_finish, answer_save, answer_start
from chat.services.chats import message_add_user
from chat.services.completion import completion_dict, final_content
from chat.services.run import CompletionFailed, CompletionRun, CompletionStopped, completion_run
from chat.services.run_manager import is_local, lease_seconds, run_manager
from chat.services.turn import Change, Turn

log = logging.getLogger(__name__)

# A run's own task outlives every request, so its queries close stale connections
# around each call (channels' database_sync_to_async); what runs while a request or
# a consumer call does (starting a run) uses plain sync_to_async, and the caller's
# connection handling.

_END = object()


class RunFailed(CompletionFailed):
    """A saved run failed (or was interrupted): `frame` is the error the client is
    told, `status` its HTTP status, as CompletionFailed."""

    def __init__(self, frame: dict, status: int) -> None:
        self.error, self.frame, self.status = None, frame, status
        Exception.__init__(self, frame["error"]["message"])


INTERRUPTED_FRAME = {
    "error": {"message": "The answer was interrupted: the server stopped.", "type": "interrupted"}
}


@dataclass(eq=False)
class LiveRun:
    """A completion answering one chat message, driven by a task of the server."""

    run: CompletionRun
    chat_id: str
    message_id: str
    message_pk: int
    parent_id: str | None
    user_id: Any
    runner: str
    turn: Turn = field(default_factory=Turn)
    status: str = MessageStatus.STREAMING
    seq: int = 0
    task: asyncio.Task | None = None
    producer: asyncio.Task | None = None
    _inbox: asyncio.Queue = field(default_factory=asyncio.Queue)
    # The requester's feed of batches (stream/answer), when one reads them.
    _feed: asyncio.Queue | None = None
    _ended: asyncio.Event = field(default_factory=asyncio.Event)
    _saved_at: float = field(default_factory=time.monotonic)
    _events_seen: int = 0
    # Saves made while streaming (the start and the end are not counted).
    saves: int = 0

    # Listening in: the requester's feed, snapshots and waiting.

    async def stream(self) -> AsyncIterator[list[dict]]:
        """The answer's batches of chunk dicts, as CompletionRun.stream gives them, for
        the requester (once). Leaving early does not stop the run."""
        feed = self._feed
        if feed is None:
            raise RuntimeError("This run's stream was taken already.")
        try:
            while (batch := await feed.get()) is not _END:
                yield batch
        finally:
            self._feed = None

    async def answer(self) -> dict[str, Any]:
        """The whole chat.completion once the run ended (background task results merged
        in); raise CompletionStopped or RunFailed, as CompletionRun.answer does."""
        self._feed = None
        await self.wait()
        if self.status == MessageStatus.STOPPED:
            raise CompletionStopped("Stopped.")
        if self.status == MessageStatus.INTERRUPTED:
            raise RunFailed(INTERRUPTED_FRAME, 503)
        if self.status == MessageStatus.ERROR:
            frame = self.turn.error_frame or {"error": {"message": "The answer failed."}}
            upstream = (frame.get("error") or {}).get("type") == "upstream_error"
            raise RunFailed(frame, 502 if upstream else 500)
        return completion_dict(self.run.req, self.run.outcome) | self._background()

    def _background(self) -> dict[str, Any]:
        wanted = self.run.req.body.get("background_tasks") or {}
        results = {"title": self.turn.title, "tags": self.turn.tags}
        return {k: v for k, v in results.items() if v is not None and wanted.get(f"{k}_generation")}

    async def wait(self) -> str:
        """Wait until the run ended (waiting can be cancelled; the run goes on); its status."""
        await self._ended.wait()
        return self.status

    def snapshot(self) -> dict[str, Any]:
        """`run.snapshot`: the answer so far, for a listener that joined mid-run."""
        return self._message(broadcast.RUN_SNAPSHOT, status=self.status, **self.turn.state())

    # Driving the run.

    def start(self, *, feed: bool) -> None:
        self._feed = asyncio.Queue() if feed else None
        self._tee_events()
        self.task = asyncio.create_task(self._drive(), name=f"chat-run-{self.message_id}")

    def _tee_events(self) -> None:
        """Hear the plugins' events as the request's recorder takes them (the inlet's,
        already recorded, first)."""
        context = self.run.req.context
        emit, call = context.event_emitter, context.event_call

        async def tee_emit(raw: dict) -> None:
            await emit(raw)
            self._take_recorded()

        async def tee_call(raw: dict) -> Any:
            answer = await call(raw)
            self._take_recorded()
            return answer

        context.event_emitter, context.event_call = tee_emit, tee_call
        self._take_recorded()

    def _take_recorded(self) -> None:
        events = self.run.req.recorder.events
        for event in events[self._events_seen :]:
            self._inbox.put_nowait(("event", event))
        self._events_seen = len(events)

    async def _produce(self) -> None:
        # The task the stop tracking (tasks.track, in CompletionRun.stream) registers.
        try:
            async for batch in self.run.stream():
                self._inbox.put_nowait(("batch", batch))
        finally:
            self._inbox.put_nowait(_END)

    async def _drive(self) -> None:
        await self._publish(broadcast.RUN_STARTED, parent_id=self.parent_id, model=self.model)
        self.producer = asyncio.create_task(self._produce(), name=f"chat-answer-{self.message_id}")
        try:
            while (item := await self._inbox.get()) is not _END:
                await self._take(*item)
            await asyncio.wait([self.producer])
            status = self._final_status()
        except asyncio.CancelledError:
            # The server is going away: say so now rather than when the lease runs out.
            self.producer.cancel()
            await self._finish(MessageStatus.INTERRUPTED)
            raise
        except Exception:
            log.exception("The run answering %s failed", self.message_id)
            self.producer.cancel()
            status = MessageStatus.ERROR
        await self._finish(status)

    @property
    def model(self) -> str:
        return str(self.run.req.body.get("model") or "")

    async def _take(self, kind: str, item: Any) -> None:
        if kind == "batch":
            if self._feed is not None:
                self._feed.put_nowait(item)
            change = Change("delta", self.turn.take_batch(item))
        else:
            change = self.turn.take_event(item)
        await self._tell(change)
        if time.monotonic() - self._saved_at >= float(settings.CHAT_RUN_SAVE_SECONDS):
            await self._save()

    async def _tell(self, change: Change) -> None:
        if change.kind == "delta" and change.value:
            await self._publish(broadcast.RUN_DELTA, content=change.value)
        elif change.kind == "content":
            await self._publish(broadcast.RUN_CONTENT, content=change.value)
        elif change.kind == "event":
            await self._publish(broadcast.RUN_EVENT, event=change.value)

    async def _save(self) -> None:
        self._saved_at = time.monotonic()
        self.saves += 1
        saved = await database_sync_to_async(answer_save)(
            pk=self.message_pk,
            runner=self.runner,
            values=self.turn.values(),
            lease_seconds=lease_seconds(),
        )
        if not saved and self.producer is not None:
            # The message is gone (its chat deleted) or another run took it: stop.
            log.info("The message %s is gone; its run stops", self.message_id)
            self.producer.cancel()

    def _final_status(self) -> str:
        if tasks.stop_requested(self.producer):
            return MessageStatus.STOPPED
        if self.producer.cancelled():
            return MessageStatus.INTERRUPTED
        if self.producer.exception() is not None:
            log.error(
                "The run answering %s failed", self.message_id, exc_info=self.producer.exception()
            )
            self.turn.error = {"content": str(self.producer.exception())}
            return MessageStatus.ERROR
        if self.turn.error_frame is not None:
            return MessageStatus.ERROR
        # The outlet filters may have rewritten the answer.
        final = final_content(self.run.outcome)
        if final != self.run.outcome.content:
            self.turn.content = final
        return MessageStatus.DONE

    async def _finish(self, status: str) -> None:
        self.status = status
        try:
            await database_sync_to_async(answer_finish)(
                pk=self.message_pk,
                runner=self.runner,
                status=status,
                values=self.turn.values(),
                title=self.turn.title,
                tags=self.turn.tags,
            )
        except Exception:
            # Its listeners are told all the same; the lease marks it interrupted later.
            log.exception("Could not save the end of the answer %s", self.message_id)
        finally:
            await self._publish(broadcast.RUN_FINISHED, status=status, **self.turn.state())
            if self._feed is not None:
                self._feed.put_nowait(_END)
            self._ended.set()
            run_manager().discard(self)

    # Publishing.

    def _message(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {
            "type": kind,
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "seq": self.seq,
            **fields,
        }

    def _groups(self, *, everyone: bool = False) -> list[str]:
        groups = [broadcast.chat_group(self.chat_id)]
        return [*groups, broadcast.user_group(self.user_id)] if everyone else groups

    async def _publish(self, kind: str, **fields: Any) -> None:
        self.seq += 1
        everyone = kind in (broadcast.RUN_STARTED, broadcast.RUN_FINISHED)
        await broadcast.publish(self._groups(everyone=everyone), self._message(kind, **fields))


async def start_chat_run(
    *, user, body: dict[str, Any], origin: dict | None = None, feed: bool = False
) -> LiveRun:
    """Start answering body["id"] in the caller's chat body["chat_id"]: a server task
    that saves the answer as it streams (`feed`: the requester reads `stream()` or
    `answer()`). Raise Chat.DoesNotExist for another user's chat, ValidationError for
    a message that cannot be answered, and what completion_run raises (model,
    access, inlet), all before anything is sent."""
    chat = await sync_to_async(chat_get_for)(user=user, id=str(body.get("chat_id")))
    manager = run_manager()
    runner = await manager.open()
    try:
        message = await sync_to_async(answer_start)(
            chat=chat,
            message_id=body.get("id"),
            parent_id=body.get("parent_id"),
            model=str(body.get("model") or ""),
            runner=runner,
            lease_seconds=lease_seconds(),
        )
        run = await _prepared(user, body, origin, message, runner)
    except BaseException:
        manager.release()
        raise
    live = LiveRun(
        run=run,
        chat_id=chat.id,
        message_id=message.message_id,
        message_pk=message.pk,
        parent_id=message.parent.message_id if message.parent else None,
        user_id=chat.user_id,
        runner=runner,
    )
    manager.add(live)
    live.start(feed=feed)
    return live


async def _prepared(user, body: dict, origin: dict | None, message: Message, runner: str):
    """completion_run, the message stored failed (with the reason) if it refuses."""
    try:
        return await completion_run(user=user, body=body, origin=origin)
    except Exception as exc:
        await sync_to_async(answer_finish)(
            pk=message.pk,
            runner=runner,
            status=MessageStatus.ERROR,
            values={"error": {"content": str(exc) or type(exc).__name__}},
        )
        raise


async def chat_completion_run(
    *, user, body: dict[str, Any], origin: dict | None = None
) -> CompletionRun | LiveRun:
    """The run for a completion request: saved into the caller's chat when the body
    names it (`chat_id`) and the answer's message id (`id`), plain otherwise (no chat,
    a temporary "local:" one, or one that does not exist). Raise Chat.DoesNotExist for
    another user's chat, before anything runs."""
    chat = await sync_to_async(chat_to_answer_in)(user=user, chat_id=body.get("chat_id"))
    if chat is not None and body.get("id"):
        return await start_chat_run(user=user, body=body, origin=origin, feed=True)
    return await completion_run(user=user, body=body, origin=origin)


def _completion_messages(chat, message: Message) -> list[dict]:
    """The conversation down to `message`, as OpenAI chat messages."""
    history = chat_document(chat=chat)["history"]["messages"]
    path, current = [], message.message_id
    while current in history and len(path) <= len(history):
        path.append(history[current])
        current = history[current].get("parentId")
    return [
        {"role": m.get("role") or "user", "content": m.get("content") or ""} for m in path[::-1]
    ]


async def start_answer(
    *,
    user,
    chat_id: str,
    user_message_id: str,
    model: str,
    extra: dict[str, Any] | None = None,
    origin: dict | None = None,
) -> LiveRun:
    """Answer a user's message of the chat anew (the pages' send and regenerate): a new
    assistant message under it. `extra` adds to the completion body (filter_ids, ...)."""

    def body_of() -> dict[str, Any]:
        chat = chat_get_for(user=user, id=chat_id)
        message = message_get(chat=chat, message_id=user_message_id)
        return {
            **(extra or {}),
            "model": model,
            "messages": _completion_messages(chat, message),
            "stream": True,
            "chat_id": chat.id,
            "id": new_id(),
            "parent_id": message.message_id,
        }

    body = await sync_to_async(body_of)()
    return await start_chat_run(user=user, body=body, origin=origin)


async def start_turn(
    *,
    user,
    chat_id: str,
    content: str,
    model: str,
    parent_id: str | None = None,
    files: list | None = None,
    extra: dict[str, Any] | None = None,
    origin: dict | None = None,
) -> LiveRun:
    """A user's turn: their message (answering `parent_id`, by default the current
    message), then its answer, as `start_answer`."""

    def add() -> Message:
        chat = chat_get_for(user=user, id=chat_id)
        return message_add_user(chat=chat, content=content, parent_id=parent_id, files=files)

    message = await sync_to_async(add)()
    return await start_answer(
        user=user,
        chat_id=chat_id,
        user_message_id=message.message_id,
        model=model,
        extra={**(extra or {}), **({"files": files} if files else {})},
        origin=origin,
    )


def stop_chat_runs(*, user, chat_id: str) -> int:
    """Stop a chat's answers: this process's (tasks.stop_chat, which refuses another
    user's with PermissionDenied) and, over the channel layer, those other processes
    run for the user's chat. Return how many were asked to stop."""
    stopped = tasks.stop_chat(user=user, chat_id=chat_id)
    elsewhere: dict[str, list[str]] = {}
    for message in streaming_messages(chat_id=chat_id, user=user).only("runner", "message_id"):
        if message.runner and not is_local(message.runner):
            elsewhere.setdefault(message.runner, []).append(message.message_id)
    for runner, message_ids in elsewhere.items():
        stop = {"type": broadcast.RUN_STOP, "chat_id": chat_id, "message_ids": message_ids}
        async_to_sync(broadcast.send)(runner, stop)
    return stopped + sum(len(ids) for ids in elsewhere.values())


async def request_snapshots(*, user, chat_id: str, reply_channel: str) -> int:
    """Ask the runs answering in the user's chat to send `reply_channel` what they have
    so far (`run.snapshot`); return how many were asked."""

    def runners() -> list[tuple[str, str]]:
        messages = streaming_messages(chat_id=chat_id, user=user).only("runner", "message_id")
        return [(m.runner, m.message_id) for m in messages if m.runner]

    asked = await sync_to_async(runners)()
    for runner, message_id in asked:
        request = {"chat_id": chat_id, "message_ids": [message_id], "reply_to": reply_channel}
        await broadcast.send(runner, {"type": broadcast.RUN_SYNC, **request})
    return len(asked)
