"""
title: Planner Agent
author: Haervwe-style
version: 1.0.0
description: Defines both an Action and a Pipe; Open WebUI picks the Pipe.
license: MIT
"""

# Style imitated: Haervwe's functions/planner.py, which defines class Action and
# class Pipe in one file. The loader checks Pipe, then Filter, then Action, so
# this registers as a pipe and the Action class is dead code.

from pydantic import BaseModel, Field


class Action:
    class Valves(BaseModel):
        pass

    def __init__(self):
        self.valves = self.Valves()

    async def action(self, body: dict, __event_emitter__=None):
        return {"content": "the action side of the planner"}


class Pipe:
    class Valves(BaseModel):
        MAX_STEPS: int = Field(default=3, description="How many plan steps to draft.")

    def __init__(self):
        self.valves = self.Valves()

    async def pipe(self, body: dict, __user__: dict = None, __event_emitter__=None) -> str:
        goal = ""
        for message in reversed(body.get("messages", [])):
            if message.get("role") == "user":
                goal = message.get("content", "")
                break
        steps = [f"{i}. Work on: {goal}" for i in range(1, self.valves.MAX_STEPS + 1)]
        if __event_emitter__:
            await __event_emitter__(
                {"type": "status", "data": {"description": "Plan drafted", "done": True}}
            )
        return "\n".join(steps)
