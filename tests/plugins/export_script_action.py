"""
title: Export Answer
author: example-dev
version: 0.1.0
description: Offers the answer as a text file, built and downloaded by a script it emits.
"""

# Style imitated: the corpus's "export" actions, which emit an `execute` event (no
# waiting for its value) whose JavaScript builds a Blob of the message and clicks a
# download link, then tell the user it is done.

import json

from pydantic import BaseModel

SCRIPT = """
const link = document.createElement('a');
link.href = URL.createObjectURL(new Blob([%s], { type: 'text/plain' }));
link.download = 'answer.txt';
document.body.appendChild(link);
link.click();
"""


class Action:
    class Valves(BaseModel):
        pass

    def __init__(self):
        self.valves = self.Valves()

    async def action(self, body: dict, __event_emitter__=None):
        text = (body.get("messages") or [{}])[-1].get("content", "")
        code = SCRIPT % json.dumps(text)
        await __event_emitter__({"type": "execute", "data": {"code": code}})
        await __event_emitter__(
            {"type": "notification", "data": {"type": "success", "content": "Exported."}}
        )
