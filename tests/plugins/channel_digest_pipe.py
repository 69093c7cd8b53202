"""
title: Channel Digest
author: fnplatform tests
version: 0.1.0
description: Summarises a channel's recent messages, and posts the digest back.
license: MIT
"""

# Community-shaped: reads channel messages (plainly and awaited), tries to post a
# message, and reloads its own module with Open WebUI's loader (a "hot reload"
# trick some pipes use), then tries to load another function's code.

from open_webui.models.messages import MessageForm, Messages
from open_webui.utils.plugin import load_function_module_by_id


class Pipe:
    async def pipe(self, body: dict, __user__: dict, __id__: str = "") -> str:
        recent = Messages.get_messages_by_channel_id("general", limit=10)
        pinned = await Messages.get_pinned_messages_by_channel_id("general")
        missing = Messages.get_message_by_id("m1")
        try:
            Messages.insert_new_message(MessageForm(content="digest"), "general", __user__["id"])
            posted = "posted"
        except PermissionError as exc:
            posted = str(exc)
        again, kind, frontmatter = load_function_module_by_id(__id__)
        try:
            load_function_module_by_id("echo_pipe")
            other = "loaded"
        except PermissionError as exc:
            other = str(exc)
        return "|".join(
            [
                str(len(recent)),
                str(len(pinned)),
                str(missing),
                posted,
                f"{type(again).__name__}:{kind}:{frontmatter['title']}",
                other,
            ]
        )
