"""
title: Echo Pipe
author: fnplatform tests
version: 0.1.0
description: Replies with the last user message, prefixed.
license: MIT
"""

from pydantic import BaseModel, Field


class Pipe:
    class Valves(BaseModel):
        PREFIX: str = Field(default="echo: ", description="Text put before the echoed message.")

    def __init__(self):
        self.valves = self.Valves()

    def pipe(self, body: dict) -> str:
        messages = body.get("messages", [])
        last = ""
        for message in reversed(messages):
            if message.get("role") == "user":
                content = message.get("content", "")
                if isinstance(content, list):
                    content = " ".join(
                        part.get("text", "") for part in content if part.get("type") == "text"
                    )
                last = content
                break
        return f"{self.valves.PREFIX}{last}"
