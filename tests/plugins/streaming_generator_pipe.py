"""
title: Word Streamer
author: example-dev
version: 0.1.0
description: Streams the last user message back one word at a time.
license: MIT
"""

# Style imitated: the docs' "pipe returning a generator" examples and many small
# community pipes: a plain sync generator function yielding text pieces.

import time
from typing import Generator

from pydantic import BaseModel, Field


class Pipe:
    class Valves(BaseModel):
        DELAY_SECONDS: float = Field(default=0.0, description="Pause between words.")

    def __init__(self):
        self.valves = self.Valves()

    def pipe(self, body: dict) -> Generator[str, None, None]:
        text = ""
        for message in reversed(body.get("messages", [])):
            if message.get("role") == "user":
                text = message.get("content") or ""
                break
        words = text.split() or ["(nothing", "to", "stream)"]
        for index, word in enumerate(words):
            if self.valves.DELAY_SECONDS:
                time.sleep(self.valves.DELAY_SECONDS)
            yield word if index == 0 else " " + word
