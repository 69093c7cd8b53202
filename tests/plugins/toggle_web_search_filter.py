"""
title: Web Search Toggle
author: example-dev
version: 1.2.0
description: A chip the user switches on to force web search for the turn.
license: MIT
required_open_webui_version: 0.5.0
"""

# Style imitated: the Gemini/OpenRouter "toggle" filters (owndev, suurt8ll, 2025):
# self.toggle = True and an inline base64 SVG in self.icon make a per-chat chip;
# inlet flips body["metadata"]["features"] flags using defensive .get chains.

from pydantic import BaseModel, Field


class Filter:
    class Valves(BaseModel):
        priority: int = Field(default=-10, description="Run before other filters.")

    def __init__(self):
        self.valves = self.Valves()
        self.toggle = True
        self.icon = (
            "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZpZXdCb3g9IjAgMCAyNCAy"
            "NCI+PGNpcmNsZSBjeD0iMTIiIGN5PSIxMiIgcj0iMTAiIGZpbGw9Im5vbmUiIHN0cm9rZT0iY3VycmVudENvbG9yIi8+PC9zdmc+"
        )

    async def inlet(self, body: dict, __event_emitter__=None, __user__: dict | None = None) -> dict:
        features = body.get("metadata", {}).get("features")
        if features is None:
            body.setdefault("metadata", {})["features"] = features = {}
        features["web_search"] = True
        # Some clients only send the top-level "features"; keep both in step.
        if isinstance(body.get("features"), dict):
            body["features"]["web_search"] = True
        if __event_emitter__:
            await __event_emitter__(
                {
                    "type": "status",
                    "data": {"description": "Web search enabled", "done": True, "hidden": False},
                }
            )
        return body
