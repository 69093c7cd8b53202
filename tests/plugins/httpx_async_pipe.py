"""
title: Async httpx streamer
author: community
version: 1.0.0
license: MIT
"""

# Style: provider pipes of 2025 (owndev, Haervwe): async def pipe with an httpx
# AsyncClient streaming the upstream's SSE and yielding the text deltas.
import json

import httpx
from pydantic import BaseModel, Field


class Pipe:
    class Valves(BaseModel):
        BASE_URL: str = Field(default="http://127.0.0.1:9/v1")
        MODEL: str = Field(default="fake-small")

    def __init__(self):
        self.valves = self.Valves()

    async def pipe(self, body: dict, __event_emitter__=None):
        if __event_emitter__:
            await __event_emitter__({"type": "status", "data": {"description": "Calling upstream", "done": False}})
        payload = {"model": self.valves.MODEL, "messages": body["messages"], "stream": True}
        async with httpx.AsyncClient(timeout=30) as client:
            async with client.stream("POST", f"{self.valves.BASE_URL}/chat/completions", json=payload) as r:
                async for line in r.aiter_lines():
                    if not line.startswith("data:") or line.strip() == "data: [DONE]":
                        continue
                    delta = json.loads(line[5:])["choices"][0]["delta"]
                    if delta.get("content"):
                        yield delta["content"]
        if __event_emitter__:
            await __event_emitter__({"type": "status", "data": {"description": "Done", "done": True}})
