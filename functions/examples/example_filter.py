"""
title: Example System Prompt
author: fnplatform
version: 1.0.0
description: Adds a system prompt, set in the valves, to every conversation of the models it is enabled for.
license: MIT
"""

# A filter rewrites the request (inlet) and/or the reply (outlet, stream).
# Filters run in ascending Valves.priority order, so priority must be a valve.

from typing import Literal

from pydantic import BaseModel, Field


class Filter:
    class Valves(BaseModel):
        priority: int = Field(default=0, description="Lower numbers run first.")
        system_prompt: str = Field(
            default="Answer clearly and say so when you are not sure.",
            description="Text added to the system prompt.",
            json_schema_extra={"input": {"type": "textarea"}},
        )
        position: Literal["before", "after"] = Field(
            default="after", description="Put the text before or after an existing system prompt."
        )

    def __init__(self):
        self.valves = self.Valves()

    def inlet(self, body: dict, __user__: dict | None = None) -> dict:
        prompt = self.valves.system_prompt.strip()
        messages = body.get("messages")
        if not prompt or messages is None:
            return body
        if messages and messages[0].get("role") == "system":
            existing = messages[0].get("content") or ""
            if isinstance(existing, str):
                parts = (
                    [prompt, existing] if self.valves.position == "before" else [existing, prompt]
                )
                messages[0]["content"] = "\n".join(p for p in parts if p)
                return body
        messages.insert(0, {"role": "system", "content": prompt})
        return body
