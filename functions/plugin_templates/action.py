"""
title: My Action
author: your-name
version: 0.1.0
description: A button under assistant messages.
license: MIT
"""

# An Action is a button under assistant messages. Its icon is an `icon_url:`
# frontmatter line or, as here, self.icon_url (a URL or a small data: URI).
# For several buttons from one function, set self.actions to a list of
# {"id", "name", "icon_url"} dicts: __id__ then says which one was clicked.

from collections.abc import Awaitable, Callable

from pydantic import BaseModel, Field

Emitter = Callable[[dict], Awaitable[None]]
Caller = Callable[[dict], Awaitable[object]]

ICON = (
    "data:image/svg+xml;base64,"
    "PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZpZXdCb3g9IjAgMCAyNCAy"
    "NCI+PHBhdGggZD0iTTEyIDV2MTRNNSAxMmgxNCIgc3Ryb2tlPSJjdXJyZW50Q29sb3IiLz48L3N2Zz4="
)


class Action:
    class Valves(BaseModel):
        # Buttons are ordered by priority, then id.
        priority: int = Field(default=0, description="Button order.")

    class UserValves(BaseModel):
        ask_first: bool = Field(default=True, description="Confirm before changing the reply.")

    def __init__(self):
        self.valves = self.Valves()
        self.icon_url = ICON

    async def action(
        self,
        body: dict,
        __user__: dict | None = None,
        __event_emitter__: Emitter | None = None,
        __event_call__: Caller | None = None,
        __id__: str | None = None,
    ) -> dict | None:
        """Run when the button is clicked.

        body["messages"] is the conversation up to the clicked message (the last
        entry), each with "id", "role" and "content"; body also has "chat_id" and
        "model". __event_emitter__ sends status / notification / message events;
        __event_call__ opens a dialog ("confirmation" answers True or False,
        "input" answers the text, or False when cancelled). Both may be None.

        Return {"messages": [...]} with changed messages to update them in the
        chat, or None to leave the chat as it is.
        """
        messages = body.get("messages") or []
        if not messages:
            return None
        message = messages[-1]

        user_valves = (__user__ or {}).get("valves")
        if __event_call__ and (user_valves is None or user_valves.ask_first):
            confirmed = await __event_call__(
                {
                    "type": "confirmation",
                    "data": {"title": "My Action", "message": "Add a signature to this reply?"},
                }
            )
            if confirmed is not True:
                return None

        message["content"] = f"{message.get('content', '')}\n\n-- signed by My Action"
        if __event_emitter__:
            await __event_emitter__(
                {"type": "notification", "data": {"type": "success", "content": "Signed"}}
            )
        return {"messages": [message]}
