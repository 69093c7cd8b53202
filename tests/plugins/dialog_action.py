"""
title: Ask And Confirm
author: example-dev
version: 0.1.0
description: Asks the user for a note, confirms, then appends it to the reply.
icon_url: data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4=
license: MIT
"""

# Style imitated: the interactive actions in the docs' events page and in
# Haervwe's collection: __event_call__ with an "input" dialog, then a
# "confirmation" dialog, checking for False (cancel) and error dicts.

from pydantic import BaseModel


class Action:
    class Valves(BaseModel):
        pass

    class UserValves(BaseModel):
        sign_notes: bool = True

    def __init__(self):
        self.valves = self.Valves()

    async def action(
        self,
        body: dict,
        __user__: dict = None,
        __event_emitter__=None,
        __event_call__=None,
    ) -> dict:
        if __event_call__ is None:
            return {"content": "This action needs an open chat window."}

        note = await __event_call__(
            {
                "type": "input",
                "data": {
                    "title": "Add a note",
                    "message": "What should be appended to this reply?",
                    "placeholder": "Type your note",
                },
            }
        )
        if not note or isinstance(note, dict):
            return None

        confirmed = await __event_call__(
            {
                "type": "confirmation",
                "data": {"title": "Append note?", "message": f"Append: {note}"},
            }
        )
        if not confirmed:
            if __event_emitter__:
                await __event_emitter__(
                    {"type": "notification", "data": {"type": "info", "content": "Cancelled"}}
                )
            return None

        if __user__ and __user__.get("valves") and __user__["valves"].sign_notes:
            note = f"{note} ({__user__.get('name', 'user')})"
        if __event_emitter__:
            await __event_emitter__({"type": "message", "data": {"content": f"\n\n> {note}"}})
        return {"content": note}
