"""
title: Asking Pipe
author: example-dev
version: 0.1.0
description: Asks who is asking before it answers, then says what the dialog gave back.
"""

# Style imitated: pipes in the docs' events page that pause for an __event_call__
# "input" mid-answer; whatever comes back (the text, False when cancelled, an
# {"error": ...} dict when nobody answered) is shown as Python's repr.

from pydantic import BaseModel


class Pipe:
    class Valves(BaseModel):
        pass

    def __init__(self):
        self.valves = self.Valves()

    async def pipe(self, body: dict, __event_call__=None):
        yield "Asking. "
        answer = await __event_call__(
            {
                "type": "input",
                "data": {
                    "title": "Your name?",
                    "message": "Who is asking?",
                    "placeholder": "Name",
                    "value": "",
                },
            }
        )
        yield f"You said: {answer!r}"
