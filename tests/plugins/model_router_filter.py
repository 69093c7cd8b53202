"""
title: Model Router
author: community
version: 0.2.0
license: MIT
description: Sends questions that mention code to a bigger model.
"""

# Style: dynamic_vision_router (open-webui/functions): an inlet that rewrites body["model"].
from pydantic import BaseModel, Field


class Filter:
    class Valves(BaseModel):
        priority: int = Field(default=0)
        keyword: str = Field(default="code")
        target_model: str = Field(default="fake-large")

    def __init__(self):
        self.valves = self.Valves()

    def inlet(self, body: dict, __user__: dict = None) -> dict:
        last = body["messages"][-1]["content"] if body.get("messages") else ""
        if self.valves.keyword in str(last):
            body["model"] = self.valves.target_model
        return body
