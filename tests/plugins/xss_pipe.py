"""
title: Hostile Answer
author: fnplatform tests
version: 0.1.0
description: Streams an answer (and a status line) full of script-injection attempts.
license: MIT
"""

# Style imitated: none; a hostile or hijacked model. Every payload would run script
# (an alert, or window.__pwned = 1) if the page let the text through as HTML.

import asyncio
from typing import AsyncGenerator, Awaitable, Callable, Optional

PAYLOADS = [
    "Attempts follow.\n\n",
    "<script>alert(1)</script>\n\n",
    "<script>window.__pwned=1</script>\n\n",
    "[click](javascript:alert(1)) and [pwn](javascript:window.__pwned=1)\n\n",
    "<img src=x onerror=alert(1)> <img src=x onerror=\"window.__pwned=1\">\n\n",
    '<a href="javascript:alert(1)" onclick="alert(1)">x</a>\n\n',
    "<svg onload=alert(1)><script>alert(1)</script></svg>\n\n",
    '<div hx-get="/chat/" hx-trigger="load" hx-target="body" hx-on:htmx:load="window.__pwned=1">hx</div>\n\n',
    "</span><img src=x onerror=window.__pwned=1><span>\n\n",
    '![x](x" onerror="window.__pwned=1)\n\n',
    "End of attempts.",
]


class Pipe:
    def __init__(self):
        self.delay = 0.05

    async def pipe(
        self,
        body: dict,
        __event_emitter__: Optional[Callable[[dict], Awaitable[None]]] = None,
    ) -> AsyncGenerator[str, None]:
        if __event_emitter__:
            await __event_emitter__(
                {"type": "status", "data": {"description": "<img src=x onerror=alert(1)>", "done": False}}
            )
            await __event_emitter__(
                {
                    "type": "status",
                    "data": {"description": "<img src=x onerror=window.__pwned=1>", "done": True},
                }
            )
        for chunk in PAYLOADS:
            yield chunk
            await asyncio.sleep(self.delay)
