"""A process's run manager: the runs one event loop drives, reachable from every
server process through one control channel, with a heartbeat on their leases.

From its first run on, a manager listens on a channel of its own (stored on each
of its messages as their `runner`): other processes send it `run.stop` and
`run.sync` there (chat.services.broadcast), naming the messages they mean, so a
request that arrives after its run ended finds nothing to act on. Its heartbeat
renews its runs' leases every third of CHAT_RUN_LEASE_SECONDS and marks
interrupted the answers of processes that stopped renewing theirs (expiring their
dialogs), telling their listeners. The listening is never cancelled: with Redis, a
receive cancelled just after the server handed it a message loses that message,
and the channels of one process share the receive.
"""

import asyncio
import logging
import weakref
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from chat.models import Message
from chat.services import broadcast, tasks
from chat.services.answers import answers_interrupt_stale, answers_renew
from chat.services.dialogs import dialogs_interrupted

log = logging.getLogger(__name__)


class Run(Protocol):
    chat_id: str
    message_id: str
    producer: asyncio.Task | None

    def snapshot(self) -> dict[str, Any]: ...


_managers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RunManager]"
_managers = weakref.WeakKeyDictionary()
# The control channels of this process's managers: their runs are stopped here
# directly, not through the channel layer.
_local_channels: set[str] = set()


def lease_seconds() -> float:
    return float(settings.CHAT_RUN_LEASE_SECONDS)


def is_local(runner: str) -> bool:
    """Whether `runner` is the control channel of a manager of this process."""
    return runner in _local_channels


def interrupted_message(message: Message) -> dict[str, Any]:
    """`run.finished` for an answer a sweep found dead: its seq is None (it is not the
    run's own, so listeners always apply it)."""
    state = {
        "content": message.content,
        "events": message.events,
        "sources": message.sources,
        "files": message.files,
        "embeds": message.embeds,
        "usage": message.usage,
        "error": message.error,
        "title": None,
        "tags": None,
    }
    return {
        "type": broadcast.RUN_FINISHED,
        "chat_id": message.chat_id,
        "message_id": message.message_id,
        "seq": None,
        "status": message.status,
        **state,
    }


async def publish_interrupted(messages: list[Message]) -> None:
    for message in messages:
        groups = [broadcast.chat_group(message.chat_id), broadcast.user_group(message.chat.user_id)]
        await broadcast.publish(groups, interrupted_message(message))


class RunManager:
    """The runs of one event loop (chat.services.live.LiveRun), by (chat, message id)."""

    def __init__(self) -> None:
        self.channel = ""
        self.runs: dict[tuple[str, str], Run] = {}
        self._opening = 0
        self._tasks: list[asyncio.Task] = []

    async def open(self) -> str:
        """Make ready for one more run (listening from now on); return the channel its
        message must name as runner. Follow with `add` or `release`."""
        self._opening += 1
        if not self._tasks:
            self.channel = await get_channel_layer().new_channel()
            _local_channels.add(self.channel)
            self._tasks = [
                asyncio.create_task(self._control(), name="run-manager-control"),
                asyncio.create_task(self._heartbeat(), name="run-manager-heartbeat"),
            ]
        return self.channel

    def add(self, run: Run) -> None:
        self._opening -= 1
        self.runs[(run.chat_id, run.message_id)] = run

    def release(self) -> None:
        """A run `open` was called for never started."""
        self._opening -= 1

    def discard(self, run: Run) -> None:
        self.runs.pop((run.chat_id, run.message_id), None)

    async def _control(self) -> None:
        layer = get_channel_layer()
        while True:
            try:
                message = await layer.receive(self.channel)
                await self._handle(message)
            except Exception:
                log.exception("Run manager %s could not take a message", self.channel)
                await asyncio.sleep(1)

    async def _handle(self, message: dict[str, Any]) -> None:
        chat_id = str(message.get("chat_id"))
        wanted = [str(m) for m in message.get("message_ids") or []]
        runs = [self.runs.get((chat_id, message_id)) for message_id in wanted]
        for run in filter(None, runs):
            if message.get("type") == broadcast.RUN_STOP:
                tasks.stop_local(chat_id, run.producer)
            elif message.get("type") == broadcast.RUN_SYNC:
                await broadcast.send(str(message["reply_to"]), run.snapshot())

    async def _heartbeat(self) -> None:
        # The first beat is at once: a process's first run also sweeps up the answers
        # of processes that died since.
        while True:
            if self.runs or self._opening:
                await self._beat()
            await asyncio.sleep(lease_seconds() / 3)

    async def _beat(self) -> None:
        try:
            await database_sync_to_async(answers_renew)(
                runner=self.channel, lease_seconds=lease_seconds()
            )
            stale = await database_sync_to_async(answers_interrupt_stale)()
            await publish_interrupted(stale)
            await dialogs_interrupted(stale)  # their questions have no one to answer
        except Exception:
            log.exception("Run manager heartbeat failed")


def run_manager() -> RunManager:
    """The run manager of the running event loop."""
    loop = asyncio.get_running_loop()
    if loop not in _managers:
        _managers[loop] = RunManager()
    return _managers[loop]
