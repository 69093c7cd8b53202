"""
title: Missing Hook Filter
author: fnplatform tests
version: 0.1.0
description: class Filter with no inlet, outlet or stream.
"""

from pydantic import BaseModel


class Filter:
    class Valves(BaseModel):
        priority: int = 0

    def __init__(self):
        self.valves = self.Valves()

    def before(self, body: dict) -> dict:
        return body

    def after(self, body: dict) -> dict:
        return body
