"""Running completions per chat, so `POST /api/tasks/chat/{chat_id}/stop` can end them.

Process-local: a stop reaches the process that runs the answer. (Broadcasting
stops over the channel layer comes with the chat pages, which need it too.)
"""

import asyncio
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


def stop_chat(*, user, chat_id: str) -> int:
    """Cancel the answers running for a chat; only its owner (or staff) may. Return how many."""
    entries = list(_running.get(chat_id, ()))
    if not user.is_staff and any(e.user_id != str(user.pk) for e in entries):
        raise PermissionDenied("You can only stop your own chats.")
    for entry in entries:
        entry.stopped = True
        entry.task.cancel()
    return len(entries)


def was_stopped(entry: Running | None) -> bool:
    """After a CancelledError: True when a stop request (not a disconnect) caused it."""
    if entry is None or not entry.stopped:
        return False
    entry.task.uncancel()
    return True
