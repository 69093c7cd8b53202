"""
title: Marker streamer
author: fnplatform tests
version: 0.1.0
"""

# Yields one chunk, waits, then writes a marker file when it finishes: a client that
# sees the first chunk while the marker is absent proves nothing was buffered.
import asyncio
from pathlib import Path

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
        Path(self.valves.MARKER).write_text("finished")
