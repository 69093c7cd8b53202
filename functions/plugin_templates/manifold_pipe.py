"""
title: My Manifold
author: your-name
version: 0.1.0
description: Several models from one function.
license: MIT
"""

# A manifold is a Pipe with a pipes() method (or a `pipes` list attribute). Each
# entry {"id", "name"} becomes a model whose id is "<function id>.<entry id>";
# self.name, when set, is put before every entry's name (include a separator).

from collections.abc import Iterator

from pydantic import BaseModel, Field


class Pipe:
    class Valves(BaseModel):
        SUFFIX: str = Field(default="", description="Text added to every reply.")

    def __init__(self):
        self.valves = self.Valves()
        self.name = "My manifold: "

    def pipes(self) -> list[dict]:
        """List the models this function offers.

        Called whenever the model list is refreshed, so keep it fast. It may be
        async, and may read self.valves (for example to list a provider's models
        once an API key is set).
        """
        return [
            {"id": "upper", "name": "Upper case"},
            {"id": "lower", "name": "Lower case"},
        ]

    def pipe(self, body: dict, __user__: dict | None = None) -> str | Iterator[str]:
        """Answer for whichever model was chosen.

        body["model"] is the full id, e.g. "my_manifold.upper": the part after
        the first dot says which entry of pipes() was picked. Return a str, a
        generator of str pieces, or an OpenAI "chat.completion" dict.
        """
        sub_id = body.get("model", "").split(".", 1)[-1]
        messages = body.get("messages", [])
        text = messages[-1].get("content", "") if messages else ""
        if not isinstance(text, str):
            text = " ".join(p.get("text", "") for p in text if p.get("type") == "text")
        if sub_id == "upper":
            return text.upper() + self.valves.SUFFIX
        if sub_id == "lower":
            return text.lower() + self.valves.SUFFIX
        return f"Unknown model: {sub_id}"
