"""
title: No Plugin Class
author: fnplatform tests
version: 0.1.0
description: Valid Python with helper classes, but no Pipe, Filter or Action.
"""

from pydantic import BaseModel


class Valves(BaseModel):
    greeting: str = "hello"


class Helper:
    def pipe(self, body: dict) -> str:
        return "a pipe method on a class that is not called Pipe"


class Tools:
    def shout(self, text: str) -> str:
        """Uppercase some text."""
        return text.upper()


def pipe(body: dict) -> str:
    return "a module-level function is not a plugin class either"
