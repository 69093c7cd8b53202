"""
title: Stream Censor
author: community
version: 0.1.0
license: MIT
"""

# Style: stream filters (suurt8ll's markdown normaliser): rewrite each streamed delta.
from pydantic import BaseModel


class Filter:
    class Valves(BaseModel):
        priority: int = 5
        word: str = "secret"

    def __init__(self):
        self.valves = self.Valves()

    def stream(self, event: dict) -> dict:
        for choice in event.get("choices", []):
            delta = choice.get("delta", {})
            if isinstance(delta.get("content"), str):
                delta["content"] = delta["content"].replace(self.valves.word, "*" * len(self.valves.word))
        return event
