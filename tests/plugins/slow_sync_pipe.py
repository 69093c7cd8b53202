"""
title: Slow sync pipe
author: community
version: 0.1.0
"""

# Style: the many 2024 pipes that block in plain sync code (time.sleep, requests).
import time

from pydantic import BaseModel


class Pipe:
    class Valves(BaseModel):
        SECONDS: float = 2.0

    def __init__(self):
        self.valves = self.Valves()

    def pipe(self, body: dict) -> str:
        time.sleep(self.valves.SECONDS)
        return "slept"
