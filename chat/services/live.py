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
  its answer) and regenerate (a new answer to a user's message); their plugins'
  questions are dialogs that wait for a page (chat.services.dialogs).
- `LiveRun.stream(events=)` / `LiveRun.answer()` / `LiveRun.events()`: for the
  requester, what CompletionRun gives (batches of chunk dicts, the plugins' events
  among them when asked / the whole chat.completion / the events); `LiveRun.wait()`.
- `stop_chat_runs(user=, chat_id=)`: stop a chat's runs, in every process.
- `request_snapshots(user=, chat_id=, reply_channel=)`: have a chat's runs send a
  listener what they have so far (`run.snapshot`).

Saves are coalesced: one UPDATE at most every CHAT_RUN_SAVE_SECONDS while the
answer streams, and one at its end; the message's lease is renewed with each save
and by the run manager's heartbeat (chat.services.run_manager).
"""

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async

from chat.models import Message, MessageStatus, new_id
from chat.selectors import (
    chat_get_for,
    chat_to_answer_in,
    message_get,
    message_list,
    streaming_messages,
)
from chat.services import broadcast, tasks
from chat.services.answers import answer_finish, answer_start
from chat.services.chats import message_add_user
from chat.services.live_run import LiveRun, RunFailed
from chat.services.run import CompletionRun, completion_run
from chat.services.run_manager import is_local, lease_seconds, run_manager

__all__ = [
    "LiveRun",
    "RunFailed",
    "chat_completion_run",
    "request_snapshots",
    "start_answer",
    "start_chat_run",
    "start_turn",
    "stop_chat_runs",
]

# Starting a run happens while a request or a consumer call runs: its queries use
# plain sync_to_async, and that caller's connection handling.


async def start_chat_run(
    *,
    user,
    body: dict[str, Any],
    origin: dict | None = None,
    feed: bool = False,
    from_page: bool = False,
) -> LiveRun:
    """Start answering body["id"] in the caller's chat body["chat_id"]: a server task
    that saves the answer as it streams (`feed`: the requester reads `stream()` or
    `answer()`; `from_page`: a chat page asked, so its plugins' questions are dialogs
    that wait for a page, where over the API only an open page is asked). Raise
    Chat.DoesNotExist for another user's chat, ValidationError for a message that
    cannot be answered, and what completion_run raises (model, access, inlet), all
    before anything is sent."""
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
        from_page=from_page,
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
    a temporary "local:" one, or no message id). Raise Chat.DoesNotExist for a chat
    that does not exist or is another user's, before anything runs."""
    if not body.get("chat_id"):
        return await completion_run(user=user, body=body, origin=origin)  # no hop: no chat
    chat = await sync_to_async(chat_to_answer_in)(user=user, chat_id=body.get("chat_id"))
    if chat is not None and body.get("id"):
        return await start_chat_run(user=user, body=body, origin=origin, feed=True)
    return await completion_run(user=user, body=body, origin=origin)


def _completion_messages(chat, message: Message) -> list[dict]:
    """The conversation from its first message down to `message`, as OpenAI messages
    (content parts, when a message has them, as they were written)."""
    rows = {row.pk: row for row in message_list(chat=chat)}
    path, row = [], rows.get(message.pk)
    while row is not None and len(path) < len(rows):
        path.append(row)
        row = rows.get(row.parent_id)
    return [
        {"role": row.role or "user", "content": row.data.get("content") or row.content}
        for row in reversed(path)
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
    return await start_chat_run(user=user, body=body, origin=origin, from_page=True)


async def start_turn(
    *,
    user,
    chat_id: str,
    content: str,
    model: str,
    parent_id: str | None = None,
    root: bool = False,
    files: list | None = None,
    extra: dict[str, Any] | None = None,
    origin: dict | None = None,
    saved: Callable[[Message], Awaitable[None]] | None = None,
) -> LiveRun:
    """A user's turn: their message (answering `parent_id`, by default the current
    message; none when `root`), then its answer, as `start_answer`. `saved(message)`
    is awaited once the message is stored, before the inlet filters run (a chat page
    shows it meanwhile); a refusal raised after it leaves the message stored."""

    def add() -> Message:
        chat = chat_get_for(user=user, id=chat_id)
        return message_add_user(
            chat=chat, content=content, parent_id=parent_id, files=files, root=root
        )

    message = await sync_to_async(add)()
    if saved is not None:
        await saved(message)
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
