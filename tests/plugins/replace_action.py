"""
title: Rewrite
author: fnplatform tests
version: 0.1.0
description: Replaces the answer's text, through a "replace" event, after a status line.
license: MIT
"""

# Style imitated: message-rewriting actions (translate, summarize buttons) that change
# the answer in place with __event_emitter__ "replace" rather than returning it.

from pydantic import BaseModel


class Action:
    class Valves(BaseModel):
        pass

    def __init__(self):
        self.valves = self.Valves()

    async def action(self, body: dict, __user__=None, __event_emitter__=None) -> None:
        if __event_emitter__:
            await __event_emitter__(
                {"type": "status", "data": {"description": "Rewriting", "done": False}}
            )
            await __event_emitter__(
                {"type": "replace", "data": {"content": "**Rewritten** by the action."}}
            )
            await __event_emitter__(
                {"type": "status", "data": {"description": "Rewritten", "done": True}}
            )
        return None
