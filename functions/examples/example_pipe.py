"""
title: Example Echo
author: fnplatform
version: 1.0.0
description: Echoes your last message back as Markdown, with word and character counts. Useful for trying filters and actions without a model.
license: MIT
"""

# A pipe is a model of its own: it appears in the model picker and pipe() writes
# the answer. Yielding pieces makes the answer stream; the same generator also
# works when the client asks for a non-streamed reply (the pieces are joined).

from collections.abc import Iterator

from pydantic import BaseModel, Field


def last_user_text(messages: list[dict]) -> str:
    """Return the text of the last user message (text parts of a multimodal one)."""
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content") or ""
        if isinstance(content, list):
            return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
        return str(content)
    return ""


class Pipe:
    class Valves(BaseModel):
        PREFIX: str = Field(default="You said:", description="Line shown before the echo.")
        SHOW_STATS: bool = Field(default=True, description="Add word and character counts.")

    class UserValves(BaseModel):
        quote: bool = Field(default=True, description="Show the echo as a block quote.")

    def __init__(self):
        self.valves = self.Valves()

    def pipe(self, body: dict, __user__: dict | None = None) -> Iterator[str]:
        text = last_user_text(body.get("messages", []))
        if not text.strip():
            yield "Send me a message and I will echo it back."
            return
        user_valves = (__user__ or {}).get("valves")
        quote = user_valves.quote if user_valves is not None else True
        yield f"{self.valves.PREFIX}\n\n"
        for line in text.splitlines() or [text]:
            yield f"> {line}\n" if quote else f"{line}\n"
        if self.valves.SHOW_STATS:
            yield "\n| words | characters |\n|---:|---:|\n"
            yield f"| {len(text.split())} | {len(text)} |\n"
