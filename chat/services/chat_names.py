"""A plugin naming its chat: `chat:title` and `chat:tags` saved as they are emitted, and
told to every open page of the chat's owner.

Why this exists: Open WebUI saves neither (only its own title task writes a title;
`chat:tags` makes its page re-fetch tags the plugin had to write itself), so a
plugin's name for a chat is lost on reload. Here a run (chat.services.live_run)
and an action (chat.services.message_events) call `name_chat_from` with each event
they take; the chat's title and tags are saved at once (not only when the answer
ends: a run that is interrupted keeps them), and `chat.named` goes to the owner's
group (chat.services.broadcast), so the chat list of each open page, and the open
chat's heading, show the new names. A failure to save is logged, never raised: the
answer goes on.
"""

import logging
from typing import Any

from channels.db import database_sync_to_async

from chat.services import broadcast
from chat.services.chats import chat_name
from chat.services.turn import tags_of, title_of
from functions.services.events import Event

log = logging.getLogger(__name__)

NAMING = frozenset({"chat:title", "chat:tags"})


async def name_chat_from(event: Event, *, chat_id: str, user_id: Any) -> None:
    """Save what a chat:title or chat:tags event names on the chat and tell the
    owner's pages (any other event: nothing)."""
    if event.type not in NAMING:
        return
    title = title_of(event.data) if event.type == "chat:title" else None
    tags = tags_of(event.data) if event.type == "chat:tags" else None
    if title is None and tags is None:
        return
    try:
        named = await database_sync_to_async(chat_name)(chat_id=chat_id, title=title, tags=tags)
        if named:
            message = {"type": broadcast.CHAT_NAMED, "chat_id": chat_id, "seq": None}
            message |= {"title": title, "tags": tags}
            await broadcast.publish([broadcast.user_group(user_id)], message)
    except Exception:
        log.exception("Could not name the chat %s after its plugin's %s", chat_id, event.type)
