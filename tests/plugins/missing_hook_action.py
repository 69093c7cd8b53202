"""
title: Missing Hook Action
author: fnplatform tests
version: 0.1.0
description: class Action without an action method.
"""

from pydantic import BaseModel


class Action:
    class Valves(BaseModel):
        pass

    def __init__(self):
        self.valves = self.Valves()

    async def act(self, body: dict) -> None:
        return None
