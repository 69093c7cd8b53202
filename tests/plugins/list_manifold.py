"""
title: Canned Replies
author: example-dev
version: 1.0
description: A manifold whose sub-models are a plain list attribute set in __init__.
"""

# Style imitated: small 2024 community manifolds (and Open WebUI Pipelines
# examples ported to functions) that assign self.pipes = [...] in __init__
# instead of defining a pipes() method.

from pydantic import BaseModel


class Pipe:
    class Valves(BaseModel):
        pass

    def __init__(self):
        self.valves = self.Valves()
        self.name = "Canned/"
        self.pipes = [
            {"id": "yes", "name": "Always yes"},
            {"id": "no", "name": "Always no"},
            {"id": "maybe", "name": "Maybe"},
        ]

    def pipe(self, body: dict):
        sub_model = body.get("model", "").split(".", 1)[-1]
        answers = {"yes": "Yes.", "no": "No.", "maybe": "Maybe..."}
        return answers.get(sub_model, f"Unknown sub-model: {sub_model}")
