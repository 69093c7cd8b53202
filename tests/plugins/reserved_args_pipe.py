"""
title: Reserved Args Probe
author: fnplatform tests
version: 0.1.0
"""

# Style: suurt8ll's probe examples: a pipe that reports what the host injected.
import json

from pydantic import BaseModel


class Pipe:
    class Valves(BaseModel):
        LABEL: str = "probe"

    class UserValves(BaseModel):
        nickname: str = "anon"

    def __init__(self):
        self.valves = self.Valves()

    async def pipe(
        self,
        body: dict,
        __user__: dict,
        __metadata__: dict,
        __model__: dict,
        __messages__: list,
        __chat_id__: str,
        __session_id__: str,
        __message_id__: str,
        __files__: list,
        __task__=None,
        __id__=None,
        __event_emitter__=None,
        __event_call__=None,
        __request__=None,
        __tools__=None,
    ) -> str:
        await __event_emitter__({"type": "status", "data": {"description": "probing", "done": True}})
        dialog = await __event_call__({"type": "confirmation", "data": {"title": "ok?"}})
        return json.dumps(
            {
                "user": {k: __user__.get(k) for k in ("id", "email", "name", "role")},
                "nickname": __user__["valves"].nickname,
                "label": self.valves.LABEL,
                "metadata": {k: __metadata__.get(k) for k in ("chat_id", "message_id", "session_id", "user_id", "filter_ids", "model_id")},
                "model": __model__["id"],
                "messages": len(__messages__),
                "ids": [__chat_id__, __session_id__, __message_id__],
                "files": __files__,
                "task": __task__,
                "id": __id__,
                "body_has_metadata": "metadata" in body,
                "dialog": dialog,
                "tools": __tools__,
            }
        )
