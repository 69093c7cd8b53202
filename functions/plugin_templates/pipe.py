"""
title: My Pipe
author: your-name
version: 0.1.0
description: Describe what this model does.
license: MIT
requirements:
"""

# A Pipe is a model of its own: it appears in the model picker and pipe() writes
# the reply. The frontmatter above must start on the very first line; its title
# pre-fills the function's name, and `requirements` lists pip packages (comma
# separated) the code needs.

from collections.abc import AsyncIterator, Awaitable, Callable

from pydantic import BaseModel, Field

Emitter = Callable[[dict], Awaitable[None]]


class Pipe:
    # Valves: settings an administrator edits in the function's valves page.
    # Each field needs a default; the description is shown as help text.
    class Valves(BaseModel):
        GREETING: str = Field(default="Hello", description="First word of every reply.")
        API_KEY: str = Field(
            default="",
            description="Shown as a password field.",
            json_schema_extra={"input": {"type": "password"}},
        )

    # UserValves: settings each user may change for themselves. They arrive as
    # __user__["valves"], never on self.
    class UserValves(BaseModel):
        shout: bool = Field(default=False, description="Reply in capitals.")

    def __init__(self):
        # Set self.valves in __init__: saved valve values are applied onto it
        # before every call. __init__ runs once per load, with no arguments.
        self.valves = self.Valves()

    async def pipe(
        self,
        body: dict,
        __user__: dict | None = None,
        __metadata__: dict | None = None,
        __event_emitter__: Emitter | None = None,
        __event_call__: Callable[[dict], Awaitable[object]] | None = None,
    ) -> AsyncIterator[str]:
        """Answer the chat.

        body is an OpenAI chat request: body["model"], body["messages"] (dicts with
        "role" and "content"), body["stream"], plus model parameters.

        Reserved arguments are passed only when named in the signature:
        __user__ (id, email, name, role, and "valves" when UserValves exists),
        __metadata__ (chat_id, message_id, ...), __event_emitter__ (send status,
        message, notification... events), __event_call__ (ask the user through a
        dialog and await the answer). Both callables may be None: check first.

        Return a str, yield str pieces (sync or async generator, as here, to
        stream), or return a complete OpenAI "chat.completion" dict.
        """
        if __event_emitter__:
            await __event_emitter__(
                {"type": "status", "data": {"description": "Thinking...", "done": False}}
            )

        last_user = next(
            (m for m in reversed(body.get("messages", [])) if m.get("role") == "user"), {}
        )
        text = last_user.get("content", "")
        if not isinstance(text, str):  # multimodal messages carry a list of parts
            text = " ".join(p.get("text", "") for p in text if p.get("type") == "text")

        user_valves = (__user__ or {}).get("valves")
        reply = f"{self.valves.GREETING}! You wrote: {text}"
        if user_valves is not None and user_valves.shout:
            reply = reply.upper()

        for index, word in enumerate(reply.split(" ")):
            yield word if index == 0 else f" {word}"

        if __event_emitter__:
            await __event_emitter__(
                {"type": "status", "data": {"description": "Done", "done": True}}
            )
