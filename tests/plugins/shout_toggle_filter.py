"""
title: Shout
author: fnplatform tests
version: 0.1.0
description: A chip that, switched on, uppercases the user's last message before the model reads it.
license: MIT
"""

# Style imitated: per-chat toggle filters (self.toggle = True makes a chip) whose
# inlet rewrites the last user message in place, as prompt-rewriting filters do.

from pydantic import BaseModel, Field


class Filter:
    class Valves(BaseModel):
        priority: int = Field(default=0, description="Filter order.")

    def __init__(self):
        self.valves = self.Valves()
        self.toggle = True

    def inlet(self, body: dict, __user__: dict | None = None) -> dict:
        for message in reversed(body.get("messages", [])):
            if message.get("role") == "user" and isinstance(message.get("content"), str):
                message["content"] = message["content"].upper()
                break
        return body
