"""
title: Typed Relay
author: fnplatform tests
version: 0.1.0
description: A pipe written with postponed annotations naming types it only imports for type checkers.
"""

# Style: typed provider pipes (`from __future__ import annotations`, imports under
# TYPE_CHECKING), so every annotation names something that does not exist at run time.
from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import Request
    from open_webui.models.users import UserModel
    from .types import ChatBody, EventEmitter


class Pipe:
    class Valves(BaseModel):
        GREETING: str = "relayed"

    def __init__(self):
        self.valves = self.Valves()

    async def pipe(
        self,
        body: ChatBody,
        __user__: UserModel | None = None,
        __request__: Request | None = None,
        __event_emitter__: EventEmitter | None = None,
    ) -> AsyncIterator[str]:
        if __event_emitter__:
            await __event_emitter__({"type": "status", "data": {"description": "relaying", "done": True}})
        name = (__user__ or {}).get("name", "nobody")
        yield f"{self.valves.GREETING} for {name}"
