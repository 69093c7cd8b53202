"""
title: aiohttp streamer
author: community
version: 0.4.0
license: MIT
"""

# Style: the most common provider pipe of the corpus (79 files use aiohttp): an
# aiohttp ClientSession streaming the upstream's SSE; aiohttp is never declared,
# because Open WebUI ships it.
import json
from typing import AsyncGenerator

import aiohttp
from pydantic import BaseModel, Field


class Pipe:
    class Valves(BaseModel):
        BASE_URL: str = Field(default="http://127.0.0.1:9/v1", description="Upstream API")
        MODEL: str = Field(default="fake-small")

    def __init__(self):
        self.valves = self.Valves()

    async def pipe(self, body: dict, __user__: dict = None) -> AsyncGenerator[str, None]:
        payload = {"model": self.valves.MODEL, "messages": body["messages"], "stream": True}
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(f"{self.valves.BASE_URL}/chat/completions", json=payload) as response:
                response.raise_for_status()
                async for raw in response.content:
                    line = raw.decode("utf-8").strip()
                    if not line.startswith("data:") or line == "data: [DONE]":
                        continue
                    delta = json.loads(line[5:])["choices"][0]["delta"]
                    if delta.get("content"):
                        yield delta["content"]
