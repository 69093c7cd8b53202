"""
title: Example Concise Mode
author: fnplatform
version: 1.0.0
description: A chip in the chat that, when switched on, asks the model for short answers.
license: MIT
"""

# self.toggle = True makes this filter a per-chat switch: it only runs when the
# user turns its chip on. self.icon is the chip's icon (a small inline SVG).

from pydantic import BaseModel, Field

ICON = (
    "data:image/svg+xml;base64,"
    "PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZpZXdCb3g9IjAgMCAyNCAyNCIgZmlsbD0ibm9uZSIg"
    "c3Ryb2tlPSJjdXJyZW50Q29sb3IiIHN0cm9rZS13aWR0aD0iMiI+PHBhdGggZD0iTTQgNmgxNk00IDEyaDEwTTQgMThoNiIv"
    "Pjwvc3ZnPg=="
)


class Filter:
    class Valves(BaseModel):
        priority: int = Field(default=10, description="Run after prompt-building filters.")
        max_sentences: int = Field(default=3, ge=1, le=20, description="Sentence limit asked for.")

    def __init__(self):
        self.valves = self.Valves()
        self.toggle = True
        self.icon = ICON

    async def inlet(self, body: dict, __event_emitter__=None) -> dict:
        instruction = f"Answer in at most {self.valves.max_sentences} sentences."
        messages = body.setdefault("messages", [])
        if (
            messages
            and messages[0].get("role") == "system"
            and isinstance(messages[0].get("content"), str)
        ):
            messages[0]["content"] = f"{messages[0]['content']}\n{instruction}"
        else:
            messages.insert(0, {"role": "system", "content": instruction})
        if __event_emitter__:
            await __event_emitter__(
                {"type": "status", "data": {"description": "Concise mode", "done": True}}
            )
        return body
