"""
title: Slow Markdown
author: fnplatform tests
version: 0.1.0
description: Streams a Markdown answer (a heading, a list, a Python code block) slowly, with status lines.
license: MIT
"""

# Style imitated: the "thinking" pipes of 2025 (an async generator pipe that reports
# what it does through __event_emitter__ status events while it yields the answer).

import asyncio
from typing import AsyncGenerator, Awaitable, Callable, Optional

from pydantic import BaseModel, Field

ANSWER = [
    "## FizzBuzz in Python\n\n",
    "Here is ",
    "what it does:\n\n",
    "- counts from 1 to 15\n",
    "- says Fizz, Buzz ",
    "or both\n\n",
    "```python\n",
    "def fizzbuzz(n):\n",
    '    return "Fizz" * (n % 3 == 0) + "Buzz" * (n % 5 == 0) or str(n)\n',
    "```\n\n",
    "That is the whole program.",
]


class Pipe:
    class Valves(BaseModel):
        DELAY_SECONDS: float = Field(default=0.1, description="Pause between chunks.")

    def __init__(self):
        self.valves = self.Valves()

    async def status(self, emitter, description: str, done: bool = False) -> None:
        if emitter:
            await emitter({"type": "status", "data": {"description": description, "done": done}})

    async def pipe(
        self,
        body: dict,
        __event_emitter__: Optional[Callable[[dict], Awaitable[None]]] = None,
    ) -> AsyncGenerator[str, None]:
        await self.status(__event_emitter__, "Reading the question")
        await asyncio.sleep(self.valves.DELAY_SECONDS)
        for index, chunk in enumerate(ANSWER):
            if index == 3:
                await self.status(__event_emitter__, "Writing the code")
            if index == len(ANSWER) - 1:
                # The last words wait longest, so a reader sees the answer unfinished.
                await asyncio.sleep(self.valves.DELAY_SECONDS * 4)
            yield chunk
            await asyncio.sleep(self.valves.DELAY_SECONDS)
        await self.status(__event_emitter__, "Answer written", done=True)
