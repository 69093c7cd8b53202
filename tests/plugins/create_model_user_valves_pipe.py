"""
title: Dynamic Valves Manifold
author: example-dev
version: 0.4.0
description: Builds its UserValves at runtime with pydantic.create_model.
license: MIT
"""

# Style imitated: suurt8ll's venice_manifold.py, which generates UserValves with
# pydantic.create_model from a table of fields instead of a nested class, so a
# static (AST) reader cannot see it; only the loaded class has it.

from typing import Optional

from pydantic import BaseModel, Field, create_model

_USER_FIELDS = {
    "temperature": (Optional[float], Field(default=None, description="Override temperature.")),
    "style": (str, Field(default="plain", description="Answer style: plain or fancy.")),
}


class Pipe:
    class Valves(BaseModel):
        DEFAULT_STYLE: str = Field(default="plain")

    UserValves = create_model("UserValves", **_USER_FIELDS)

    def __init__(self):
        self.valves = self.Valves()
        self.name = "dynamic/"

    def pipes(self) -> list[dict]:
        return [{"id": "plain", "name": "Plain"}, {"id": "fancy", "name": "Fancy"}]

    def pipe(self, body: dict, __user__: Optional[dict] = None) -> str:
        style = self.valves.DEFAULT_STYLE
        if __user__ and __user__.get("valves") is not None:
            style = __user__["valves"].style
        text = body.get("messages", [{}])[-1].get("content", "")
        return f"*{text}*" if style == "fancy" else text
