"""
title: Text Tools
author: example-dev
version: 0.3.0
description: Two buttons under each reply, summarize and translate.
license: MIT
"""

# Style imitated: multi-button actions (docs "actions" example and Fu-Jie's
# action collection, 2025): self.actions lists the buttons and __id__ says which
# one was clicked. The returned message content replaces the reply.

from pydantic import BaseModel, Field


class Action:
    class Valves(BaseModel):
        priority: int = Field(default=0, description="Button order.")
        target_language: str = Field(default="French", description="Translate into this language.")

    def __init__(self):
        self.valves = self.Valves()
        self.actions = [
            {
                "id": "summarize",
                "name": "Summarize",
                "icon_url": "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4=",
            },
            {"id": "translate", "name": "Translate"},
        ]

    async def action(
        self,
        body: dict,
        __id__=None,
        __user__=None,
        __event_emitter__=None,
        __model__=None,
    ):
        messages = body.get("messages", [])
        if not messages:
            return None
        last = messages[-1]
        text = last.get("content", "")
        if __id__ == "summarize":
            first_sentence = text.split(". ")[0].strip()
            result = f"**Summary:** {first_sentence}"
        elif __id__ == "translate":
            result = f"[{self.valves.target_language}] {text}"
        else:
            result = text
        if __event_emitter__:
            await __event_emitter__(
                {"type": "status", "data": {"description": f"{__id__} done", "done": True}}
            )
        last["content"] = result
        return {"messages": [last]}
