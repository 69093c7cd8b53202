"""
title: Ping Action
author: fnplatform tests
version: 0.1.0
description: Answers pong, after saying so in a status line.
icon_url: data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4=
license: MIT
"""

from pydantic import BaseModel


class Action:
    class Valves(BaseModel):
        pass

    def __init__(self):
        self.valves = self.Valves()

    async def action(self, body: dict, __user__=None, __event_emitter__=None) -> dict:
        if __event_emitter__:
            await __event_emitter__(
                {"type": "status", "data": {"description": "Pinging...", "done": True}}
            )
        return {"content": "pong"}
