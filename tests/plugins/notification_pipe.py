"""
title: Notifier
author: fnplatform tests
version: 0.1.0
description: Asked to "notify", sends one notification of each level; otherwise says it is ready.
license: MIT
"""

# Style imitated: pkeffect's notification examples (a toast per level through
# __event_emitter__, alongside a short answer).

LEVELS = ["info", "success", "warning", "error"]


class Pipe:
    async def pipe(self, body: dict, __event_emitter__=None) -> str:
        if "notify" not in body["messages"][-1]["content"]:
            return "Ready: ask me to notify."
        for level in LEVELS:
            note = {"type": level, "content": f"A {level} notification"}
            await __event_emitter__({"type": "notification", "data": note})
        return "Notified."
