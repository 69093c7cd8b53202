"""
title: Marker streamer
author: fnplatform tests
version: 0.1.0
"""

# Yields one chunk, waits, then calls the marker URL when it finishes: a client that
# sees the first chunk before the marker was called proves nothing was buffered.
# (A URL, not a file: the plugin's sandbox cannot write where the test reads.)
import asyncio
import urllib.request

from pydantic import BaseModel


class Pipe:
    class Valves(BaseModel):
        MARKER: str = ""
        PAUSE: float = 1.5

    def __init__(self):
        self.valves = self.Valves()

    async def pipe(self, body: dict):
        yield "first "
        await asyncio.sleep(self.valves.PAUSE)
        yield "second"
        await asyncio.to_thread(lambda: urllib.request.urlopen(self.valves.MARKER, timeout=5).read())
