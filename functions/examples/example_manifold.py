"""
title: Example Text Tricks
author: fnplatform
version: 1.0.0
description: A manifold pipe offering two models, one that reverses your message and one that shouts it.
license: MIT
"""

# A manifold is one Pipe that offers several models. pipes() lists them; each
# appears as "<function id>.<sub id>", named with self.name as a prefix. pipe()
# receives that full id in body["model"] and picks the behaviour from it.

from pydantic import BaseModel, Field

SUB_MODELS = {
    "reverse": "Reverse",
    "shout": "Shout",
}


def last_user_text(messages: list[dict]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content") or ""
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
            return str(content)
    return ""


class Pipe:
    class Valves(BaseModel):
        EXCLAMATION_MARKS: int = Field(
            default=3, ge=0, le=10, description="How many '!' the shout model adds."
        )

    def __init__(self):
        self.valves = self.Valves()
        self.name = "Text tricks: "

    def pipes(self) -> list[dict]:
        return [{"id": sub_id, "name": name} for sub_id, name in SUB_MODELS.items()]

    def pipe(self, body: dict) -> str:
        sub_id = body.get("model", "").split(".", 1)[-1]
        text = last_user_text(body.get("messages", []))
        if sub_id == "reverse":
            return text[::-1]
        if sub_id == "shout":
            return text.upper() + "!" * self.valves.EXCLAMATION_MARKS
        return f"Unknown model {sub_id!r}; choose one of: {', '.join(SUB_MODELS)}."
