"""
title: Init Raises
author: fnplatform tests
version: 0.1.0
description: A pipe whose constructor fails, the way some pipes check configuration eagerly.
"""

from pydantic import BaseModel


class Pipe:
    class Valves(BaseModel):
        API_KEY: str = ""

    def __init__(self):
        self.valves = self.Valves()
        if not self.valves.API_KEY:
            raise ValueError("missing configuration")

    def pipe(self, body: dict) -> str:
        return "unreachable"
