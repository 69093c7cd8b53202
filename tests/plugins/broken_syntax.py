"""
title: Broken Syntax
author: fnplatform tests
version: 0.1.0
description: A pipe with a missing closing parenthesis; it must never load.
"""

from pydantic import BaseModel


class Pipe:
    class Valves(BaseModel):
        pass

    def __init__(self):
        self.valves = self.Valves()

    def pipe(self, body: dict) -> str:
        # syntax error on line 20
        return "unbalanced".upper(
