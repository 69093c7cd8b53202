"""
title: HTTP/2 client pipe
author: community
version: 1.0.0
license: MIT
"""

# Style: provider pipes that build an httpx.AsyncClient(http2=True) (it needs the h2
# package, which Open WebUI ships through httpx[http2]) and post a non-streamed
# completion upstream.
import httpx
from pydantic import BaseModel


class Pipe:
    class Valves(BaseModel):
        BASE_URL: str = "http://127.0.0.1:9/v1"

    def __init__(self):
        self.valves = self.Valves()
        self.client = httpx.AsyncClient(http2=True, timeout=30)

    async def pipe(self, body: dict) -> str:
        payload = {"model": "fake-small", "messages": body["messages"], "stream": False}
        response = await self.client.post(f"{self.valves.BASE_URL}/chat/completions", json=payload)
        response.raise_for_status()
        answer = response.json()["choices"][0]["message"]["content"]
        return f"{answer} ({response.http_version})"
