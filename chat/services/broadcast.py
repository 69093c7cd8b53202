"""What runs publish on the channel layer: the groups, and the messages sent to them.

Every run (chat.services.live) publishes its progress to the group of its chat,
`chat_group(chat_id)`, and its start and end to the group of the chat's owner,
`user_group(user_id)`, so any number of pages (two tabs, a sidebar) follow it. A
consumer joins the groups and handles each type with a method of its own (the
type's dots become underscores: `run_delta`, `run_event`, ...). Messages are plain
data (no HTML: the consumer renders) and each names its `chat_id` and
`message_id` (the answer's Open WebUI message id), and its `seq`: the run's
messages count up from 1, so a listener can tell what it has seen. A `seq` of
None (null) means the message is not part of a run: always apply it, whatever
snapshot was seen. A sweep that finds a dead process's answer sends its
`run.finished` so, and `message.updated` always has it.

Group messages (chat group; `run.started` and `run.finished` go to the user group too):

- `run.started`  {parent_id, model}: an answer began (content empty).
- `run.delta`    {content}: text added to the answer.
- `run.content`  {content}: the answer's whole content replaced (a "replace" event).
- `run.event`    {event: {"type", "data"}, columns}: a plugin's event, in Open WebUI's
  canonical types (chat.services.turn: "status", "source", "files", "embeds",
  "notification", "chat:title", ...), and the message's columns it changed, with
  their new values (Change.columns: "sources", "files", "embeds", "usage", "error",
  and "content" when a chat:completion replaced it); one renderer per type.
- `run.finished` {status, ...state}: the answer ended; status is "done", "stopped",
  "error" or "interrupted", and the state (below) is final.
- `message.updated` {...state, event}: a message no run is writing changed, as it now
  is: an action (a message button) emitted an event on it (`event`, None for text
  added; chat.services.message_events).

User group only:

- `chat.named`   {title, tags}: a plugin named the chat (chat:title, chat:tags), saved
  already (chat.services.chat_names), or its owner renamed it; the pages redraw its
  entry in the chat list.
- `chat.listed`  {change: "created" | "deleted"}: one of the user's chats was made or
  deleted (chat.services.chats, once committed); the pages redraw their chat list.

Sent to one listener's channel, in answer to `request_snapshots`:

- `run.snapshot` {status: "streaming", ...state}: the answer so far. A listener that
  joins mid-run joins the chat group first, asks, and drops the run's messages up
  to the snapshot's `seq` (later ones follow it on the same channel, in order).

State: {content, events, sources, files, embeds, usage, error, title, tags}.

Control messages, to a run manager's own channel (chat.services.run_manager):
`run.stop` {chat_id, message_ids} and `run.sync` {chat_id, message_ids, reply_to}.
"""

import hashlib
import re
from typing import Any

from channels.layers import get_channel_layer

RUN_STARTED = "run.started"
RUN_DELTA = "run.delta"
RUN_CONTENT = "run.content"
RUN_EVENT = "run.event"
RUN_FINISHED = "run.finished"
RUN_SNAPSHOT = "run.snapshot"
RUN_STOP = "run.stop"
RUN_SYNC = "run.sync"
MESSAGE_UPDATED = "message.updated"
CHAT_NAMED = "chat.named"
CHAT_LISTED = "chat.listed"

# Channels' group names: letters, digits, "-", "_", "." and under 100 characters.
_PLAIN_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


def _key(value: Any) -> str:
    text = str(value)
    if _PLAIN_ID.fullmatch(text):
        return text
    return "h" + hashlib.sha256(text.encode()).hexdigest()[:40]


def chat_group(chat_id: str) -> str:
    """The group of a chat's listeners (its id hashed when it is not a plain one)."""
    return f"chat.{_key(chat_id)}"


def user_group(user_id: Any) -> str:
    """The group of a user's open pages."""
    return f"user.{_key(user_id)}"


async def publish(groups: list[str], message: dict[str, Any]) -> None:
    """Send `message` to each group (a listener that is gone or full misses it)."""
    layer = get_channel_layer()
    if layer is None:
        return
    for group in groups:
        await layer.group_send(group, message)


async def send(channel: str, message: dict[str, Any]) -> None:
    """Send `message` to one channel (a run manager's, or a listener's)."""
    layer = get_channel_layer()
    if layer is not None:
        await layer.send(channel, message)
