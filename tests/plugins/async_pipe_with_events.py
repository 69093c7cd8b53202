"""
title: Status Reporter
author: example-dev
version: 0.2.0
description: An async pipe that reports progress through status events.
license: MIT
"""

# Style imitated: agentic pipes of 2025 (Haervwe, suurt8ll): async pipe(),
# __event_emitter__ status updates with done False/True, and reading who is
# asking from __user__ and where from __metadata__, guarding for None.

import asyncio
from typing import Awaitable, Callable, Optional

from pydantic import BaseModel, Field


class Pipe:
    class Valves(BaseModel):
        STEPS: int = Field(default=2, description="Number of fake work steps.")

    class UserValves(BaseModel):
        show_status: bool = Field(default=True, description="Show progress lines.")

    def __init__(self):
        self.valves = self.Valves()

    async def emit_status(
        self,
        emitter: Optional[Callable[[dict], Awaitable[None]]],
        description: str,
        done: bool = False,
    ) -> None:
        if emitter:
            await emitter({"type": "status", "data": {"description": description, "done": done}})

    async def pipe(
        self,
        body: dict,
        __user__: Optional[dict] = None,
        __metadata__: Optional[dict] = None,
        __event_emitter__: Optional[Callable[[dict], Awaitable[None]]] = None,
    ) -> str:
        user = __user__ or {}
        show = True
        if user.get("valves") is not None:
            show = user["valves"].show_status
        emitter = __event_emitter__ if show else None
        for step in range(1, self.valves.STEPS + 1):
            await self.emit_status(emitter, f"Step {step} of {self.valves.STEPS}...")
            await asyncio.sleep(0)
        await self.emit_status(emitter, "Finished", done=True)
        chat_id = (__metadata__ or {}).get("chat_id", "no chat")
        return f"Done for {user.get('name', 'someone')} in {chat_id}."
