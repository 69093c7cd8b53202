"""
title: Example Word Count
author: fnplatform
version: 1.0.0
description: A button under replies that counts the words of the message and tells you.
license: MIT
icon_url: data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZpZXdCb3g9IjAgMCAyNCAyNCIgZmlsbD0ibm9uZSIgc3Ryb2tlPSJjdXJyZW50Q29sb3IiIHN0cm9rZS13aWR0aD0iMiI+PHBhdGggZD0iTTQgN2gxNk00IDEyaDE2TTQgMTdoOSIvPjwvc3ZnPg==
"""

# An action is a button under assistant messages. body["messages"] holds the
# conversation up to the clicked message; the emitter shows progress (status)
# and pop-ups (notification). Returning nothing leaves the message unchanged.

from pydantic import BaseModel, Field


class Action:
    class Valves(BaseModel):
        priority: int = Field(default=0, description="Button order under the message.")
        words_per_minute: int = Field(
            default=230, ge=50, le=1000, description="Reading speed for the estimate."
        )

    def __init__(self):
        self.valves = self.Valves()

    async def action(self, body: dict, __user__=None, __event_emitter__=None) -> None:
        messages = body.get("messages") or []
        content = messages[-1].get("content", "") if messages else ""
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
        words = len(str(content).split())
        minutes = round(words / self.valves.words_per_minute)
        reading = f"about {minutes} min to read" if minutes else "under a minute to read"
        summary = f"{words} word{'' if words == 1 else 's'}, {reading}"
        if __event_emitter__ is None:
            return None
        await __event_emitter__({"type": "status", "data": {"description": summary, "done": True}})
        await __event_emitter__(
            {"type": "notification", "data": {"type": "info", "content": summary}}
        )
        return None
