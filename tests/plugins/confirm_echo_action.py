"""
title: Confirm Echo
author: example-dev
version: 0.1.0
description: Asks for a confirmation, then writes what it got back into the reply.
"""

# Style imitated: confirm-before-acting actions (the docs' events page, Haervwe's
# collection): one "confirmation" __event_call__, its answer (True, False on cancel,
# or an {"error": ...} dict) written over the reply with a "replace" event.

from pydantic import BaseModel


class Action:
    class Valves(BaseModel):
        pass

    def __init__(self):
        self.valves = self.Valves()

    async def action(self, body: dict, __event_emitter__=None, __event_call__=None):
        confirmed = await __event_call__(
            {
                "type": "confirmation",
                "data": {"title": "Really rewrite?", "message": "This replaces the answer."},
            }
        )
        await __event_emitter__({"type": "replace", "data": {"content": f"Confirmed: {confirmed!r}"}})
        return {"confirmed": confirmed}
