"""A plugin naming its chat: `chat:title` and `chat:tags` (and the title a
`chat:completion` carries) saved as they are emitted, and told to every open page of
the chat's owner.

Why this exists: Open WebUI saves neither (only its own title task writes a title;
`chat:tags` makes its page re-fetch tags the plugin had to write itself), so a
plugin's name for a chat is lost on reload. Here a run (chat.services.live_run)
and an action (chat.services.message_events) call `name_chat_from` with each event
they take; the chat's title and tags are saved at once (not only when the answer
ends: a run that is interrupted keeps them), and chat_name sends `chat.named` to the
owner's group (chat.services.broadcast), so the chat list of each open page, and the open
chat's heading, show the new names. A failure to save is logged, never raised: the
answer goes on.
"""

import logging
from typing import Any

from channels.db import database_sync_to_async

from chat.services.chats import chat_name
from chat.services.turn import tags_of, title_of
from functions.services.events import Event

log = logging.getLogger(__name__)


def names_of(event: Event) -> tuple[str | None, list[str] | None]:
    """The title and tags an event names its chat (None, None for most): chat:title,
    chat:tags, and the title a chat:completion carries (as Turn folds it)."""
    data = event.data if isinstance(event.data, dict) else {}
    if event.type == "chat:title":
        return title_of(event.data), None
    if event.type == "chat:tags":
        return None, tags_of(event.data)
    if event.type == "chat:completion" and data.get("title"):
        return title_of(data.get("title")), None
    return None, None


async def name_chat_from(event: Event, *, chat_id: str, user_id: Any) -> None:
    """Save what the event names the chat, if anything (names_of); chat_name tells the
    owner's pages."""
    title, tags = names_of(event)
    if title is None and tags is None:
        return
    try:
        await database_sync_to_async(chat_name)(chat_id=chat_id, title=title, tags=tags)
    except Exception:
        log.exception("Could not name the chat %s after its plugin's %s", chat_id, event.type)
