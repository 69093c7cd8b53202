"""Running completions per chat, so `POST /api/tasks/chat/{chat_id}/stop` can end them.

Process-local: `stop_chat` cancels the answers this process runs for a chat. The
answers other server processes run for it are reached over the channel layer
(chat.services.live.stop_chat_runs asks their run managers, which call
`stop_local`). A stop may come from any thread: the task is cancelled on its own
event loop.
"""

import asyncio
import contextlib
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied


@dataclass(eq=False)
class Running:
    task: asyncio.Task
    user_id: str
    stopped: bool = False


_running: dict[str, set[Running]] = {}
# Tasks a stop was asked of: a run that must tell "stopped" from "finished" after its
# stream ended (the Running entry is gone by then) asks `stop_requested`.
_stop_requested: "weakref.WeakSet[asyncio.Task]" = weakref.WeakSet()


@contextmanager
def track(chat_id: str | None, user_id: str) -> Iterator[Running | None]:
    """Register the current task as answering chat_id for as long as the block runs."""
    task = asyncio.current_task()
    if not chat_id or task is None:
        yield None
        return
    entry = Running(task, user_id)
    _running.setdefault(chat_id, set()).add(entry)
    try:
        yield entry
    finally:
        entries = _running.get(chat_id, set())
        entries.discard(entry)
        if not entries:
            _running.pop(chat_id, None)


def _cancel(entry: Running) -> None:
    """Cancel the entry's task once, on its own loop (a stop may come from a thread)."""
    if entry.stopped:
        return
    entry.stopped = True
    _stop_requested.add(entry.task)
    loop = entry.task.get_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        entry.task.cancel()
    else:
        with contextlib.suppress(RuntimeError):  # its loop is closed: nothing runs there
            loop.call_soon_threadsafe(entry.task.cancel)


def stop_chat(*, user, chat_id: str) -> int:
    """Cancel the answers running for a chat; only its owner (or staff) may. Return how many."""
    entries = list(_running.get(chat_id, ()))
    if not user.is_staff and any(e.user_id != str(user.pk) for e in entries):
        raise PermissionDenied("You can only stop your own chats.")
    for entry in entries:
        _cancel(entry)
    return len(entries)


def stop_local(chat_id: str, task: asyncio.Task | None = None) -> int:
    """Cancel this process's answers for a chat (only the one `task` runs, if given),
    for a stop already allowed where it was asked; return how many."""
    entries = [e for e in _running.get(chat_id, ()) if task is None or e.task is task]
    for entry in entries:
        _cancel(entry)
    return len(entries)


def stop_requested(task: asyncio.Task | None) -> bool:
    """Whether a stop was asked of this task (after it ended, too)."""
    return task is not None and task in _stop_requested


def was_stopped(entry: Running | None) -> bool:
    """After a CancelledError: True when a stop request (not a disconnect) caused it."""
    if entry is None or not entry.stopped:
        return False
    entry.task.uncancel()
    return True
