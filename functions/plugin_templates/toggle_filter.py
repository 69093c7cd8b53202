"""
title: My Toggle
author: your-name
version: 0.1.0
description: A switch in the chat that changes how the model answers while it is on.
license: MIT
"""

# A toggle filter is a Filter with self.toggle = True: it shows as a chip under
# the message box and runs only in chats where the user switched it on.
# self.icon (or an `icon_url:` line in the frontmatter) is the chip's icon; a
# small data: URI keeps it self-contained.

from pydantic import BaseModel, Field

ICON = (
    "data:image/svg+xml;base64,"
    "PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZpZXdCb3g9IjAgMCAyNCAy"
    "NCI+PGNpcmNsZSBjeD0iMTIiIGN5PSIxMiIgcj0iMTAiIGZpbGw9Im5vbmUiIHN0cm9rZT0iY3Vy"
    "cmVudENvbG9yIi8+PC9zdmc+"
)


class Filter:
    class Valves(BaseModel):
        priority: int = Field(default=0, description="Lower numbers run first.")
        instruction: str = Field(
            default="Explain like I am five.",
            description="Added to the system prompt while the toggle is on.",
            json_schema_extra={"input": {"type": "textarea"}},
        )

    def __init__(self):
        self.valves = self.Valves()
        self.toggle = True
        self.icon = ICON

    async def inlet(self, body: dict, __event_emitter__=None) -> dict:
        """Runs only while the toggle is on: add the instruction to the system prompt."""
        messages = body.setdefault("messages", [])
        first = messages[0] if messages else {}
        if first.get("role") == "system" and isinstance(first.get("content"), str):
            first["content"] = f"{first['content']}\n{self.valves.instruction}"
        else:
            messages.insert(0, {"role": "system", "content": self.valves.instruction})
        # Chat features can be switched here too, for example web search:
        # body.setdefault("metadata", {}).setdefault("features", {})["web_search"] = True
        if __event_emitter__:
            await __event_emitter__(
                {"type": "status", "data": {"description": "My Toggle is on", "done": True}}
            )
        return body
