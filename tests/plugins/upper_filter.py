"""
title: Upper Filter
author: fnplatform tests
version: 0.1.0
description: Uppercases the last user message on the way in; leaves replies alone.
license: MIT
"""

from typing import Optional

from pydantic import BaseModel, Field


class Filter:
    class Valves(BaseModel):
        priority: int = Field(default=0, description="Filters with a lower priority run first.")

    def __init__(self):
        self.valves = self.Valves()

    async def inlet(self, body: dict, __user__: Optional[dict] = None) -> dict:
        messages = body.get("messages", [])
        for message in reversed(messages):
            if message.get("role") == "user":
                if isinstance(message.get("content"), str):
                    message["content"] = message["content"].upper()
                break
        return body

    def outlet(self, body: dict, __user__: Optional[dict] = None) -> dict:
        return body

    def stream(self, event: dict) -> dict:
        return event
