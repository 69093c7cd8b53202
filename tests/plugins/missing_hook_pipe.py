"""
title: Missing Hook Pipe
author: fnplatform tests
version: 0.1.0
description: class Pipe without a pipe method (the author named it run).
"""

from pydantic import BaseModel


class Pipe:
    class Valves(BaseModel):
        pass

    def __init__(self):
        self.valves = self.Valves()

    def run(self, body: dict) -> str:
        return "never called"
