"""One server-owned run: a completion answering one chat message, driven by a task
of the server (chat.services.live starts them).

The run's producer task iterates CompletionRun.stream() (so the stop tracking of
chat.services.tasks registers it); its driver takes each batch and each plugin
event, in order, into a Turn (chat.services.turn), tells the chat's group
(chat.services.broadcast), feeds the requester when there is one, and saves the
message at most every CHAT_RUN_SAVE_SECONDS (chat.services.answers), then once at
its end with its final status.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from chat.models import MessageStatus
from chat.services import broadcast, tasks
from chat.services.answers import answer_finish, answer_save
from chat.services.chat_names import name_chat_from
from chat.services.completion import completion_dict, event_chunk, final_content
from chat.services.dialogs import DialogAsker, hear_events
from chat.services.run import (
    CompletionFailed,
    CompletionRun,
    CompletionStopped,
    ready_batches,
)
from chat.services.run_manager import lease_seconds, run_manager
from chat.services.turn import Change, Turn
from functions.services.events import Event

log = logging.getLogger(__name__)

# The run's own task outlives every request, so its queries close stale connections
# around each call (channels' database_sync_to_async).

_END = object()
_SAVE_DUE = object()


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
    _unsaved: bool = False
    # Saves made while streaming (the start and the end are not counted).
    saves: int = 0
    # The plugins' questions (__event_call__ dialogs) about this answer; a run a chat
    # page started asks them whether or not a page is open (one over the API: only
    # when one is).
    asker: DialogAsker | None = None
    from_page: bool = False

    # Listening in: the requester's feed, snapshots and waiting.

    async def stream(self, *, events: bool = False) -> AsyncIterator[list[dict]]:
        """The answer's batches of chunk dicts, as CompletionRun.stream gives them (with
        `events`, the plugins' events among them as event chunks, each as the run takes
        it), for the requester (once). Leaving early does not stop the run."""
        feed = self._feed
        if feed is None:
            raise RuntimeError("This run's stream was taken already.")
        req = self.run.req
        try:
            async for items in ready_batches(feed, _END):
                batch = [
                    event_chunk(req, item) if isinstance(item, Event) else item
                    for item in items
                    if events or not isinstance(item, Event)
                ]
                if batch:
                    yield batch
        finally:
            self._feed = None

    def events(self) -> list[dict[str, Any]]:
        """The plugins' events so far, as CompletionRun.events gives them."""
        return self.run.events()

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
        already recorded, first). Their questions ("input", "confirmation", "execute")
        become dialogs of the chat (chat.services.dialogs), answered on any of its pages."""
        context = self.run.req.context
        recorder = self.run.req.recorder
        self.asker = DialogAsker(
            user_id=self.user_id,
            chat_id=self.chat_id,
            message_id=self.message_id,
            function_id=recorder.function_id,
            runner=self.runner,
            only_if_open=not self.from_page,
        )

        async def took() -> None:
            self._take_recorded()

        hear_events(context, recorder, asker=self.asker, took=took)
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
            await self._pump()
            status = self._final_status()
        except asyncio.CancelledError:
            # The server is going away: say so now rather than when the lease runs out.
            self.producer.cancel()
            await self._finish(MessageStatus.INTERRUPTED)
            raise
        except Exception as exc:
            log.exception("The run answering %s failed", self.message_id)
            self.producer.cancel()
            self.turn.fail(f"The answer failed: {exc}")
            status = MessageStatus.ERROR
        await self._finish(status)

    async def _pump(self) -> None:
        """Take what the producer and the plugins send until the stream ends, saving
        what changed at most every CHAT_RUN_SAVE_SECONDS (and after a quiet spell)."""
        while (item := await self._next()) is not _END:
            if item is _SAVE_DUE:
                await self._save()
            else:
                await self._take(*item)
        await asyncio.wait([self.producer])

    async def _next(self) -> Any:
        if not self._unsaved:
            return await self._inbox.get()
        due = float(settings.CHAT_RUN_SAVE_SECONDS) - (time.monotonic() - self._saved_at)
        try:
            return await asyncio.wait_for(self._inbox.get(), max(due, 0))
        except TimeoutError:
            return _SAVE_DUE

    @property
    def model(self) -> str:
        return str(self.run.req.body.get("model") or "")

    async def _take(self, kind: str, item: Any) -> None:
        if self._feed is not None:
            # The requester's feed holds lists: a batch, or one event.
            self._feed.put_nowait(item if kind == "batch" else [item])
        if kind == "batch":
            change = Change("delta", self.turn.take_batch(item))
        else:
            change = self.turn.take_event(item)
        self._unsaved = True
        if kind == "event":
            await self._keep(item)
        await self._tell(change)

    async def _keep(self, event: Any) -> None:
        """Save now what an event's listeners read back from the database: an embed
        (its frame loads it from the row, chat.sandbox) and the chat's names."""
        if event.type == "embeds":
            await self._save()
        await name_chat_from(event, chat_id=self.chat_id, user_id=self.user_id)

    async def _tell(self, change: Change) -> None:
        if change.kind == "delta" and change.value:
            await self._publish(broadcast.RUN_DELTA, content=change.value)
        elif change.kind == "content":
            await self._publish(broadcast.RUN_CONTENT, content=change.value)
        elif change.kind == "event":
            await self._publish(broadcast.RUN_EVENT, event=change.value, columns=change.columns)

    async def _save(self) -> None:
        self._saved_at, self._unsaved = time.monotonic(), False
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
        if (failure := self.producer.exception()) is not None:
            log.error("The run answering %s failed", self.message_id, exc_info=failure)
            self.turn.fail(f"The answer failed: {failure}")
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
        if self.asker is not None:
            await self.asker.close()  # nobody waits for its dialogs any more
        try:
            await database_sync_to_async(answer_finish)(
                pk=self.message_pk,
                runner=self.runner,
                status=status,
                values=self.turn.values(),
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
