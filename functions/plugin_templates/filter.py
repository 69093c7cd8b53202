"""
title: My Filter
author: your-name
version: 0.1.0
description: Rewrites requests before the model and replies after it.
license: MIT
"""

# A Filter has any of three hooks; define only the ones you need:
#   inlet(body)   before the model is called: change messages, model, params;
#                 raise an Exception to stop the turn and show its message;
#   stream(event) on every streamed chunk (an OpenAI chat.completion.chunk);
#                 return the chunk to keep it, or None to drop it;
#   outlet(body)  once the reply is complete: change the saved messages.
# Each may be sync or async, and must return the (changed) body or event.
# The first argument is passed by name, so keep the names `body` and `event`.

from pydantic import BaseModel, Field


class Filter:
    class Valves(BaseModel):
        # Filters run in ascending priority (then id), for inlet, stream and outlet.
        priority: int = Field(default=0, description="Lower numbers run first.")
        banned_word: str = Field(default="", description="Replaced by *** in replies.")

    class UserValves(BaseModel):
        enabled: bool = Field(default=True, description="Turn this filter off for yourself.")

    def __init__(self):
        self.valves = self.Valves()

    def _enabled(self, user: dict | None) -> bool:
        valves = (user or {}).get("valves")
        return valves is None or valves.enabled

    async def inlet(
        self,
        body: dict,
        __user__: dict | None = None,
        __metadata__: dict | None = None,
        __event_emitter__=None,
    ) -> dict:
        """Change the request; body["metadata"] and body["files"] are still present here."""
        if not self._enabled(__user__):
            return body
        messages = body.get("messages", [])
        if not any(m.get("role") == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": "Be concise."})
        return body

    def stream(self, event: dict, __user__: dict | None = None) -> dict:
        """Edit one streamed chunk."""
        banned = self.valves.banned_word
        if banned and self._enabled(__user__):
            for choice in event.get("choices", []):
                content = choice.get("delta", {}).get("content")
                if content:
                    choice["delta"]["content"] = content.replace(banned, "***")
        return event

    async def outlet(self, body: dict, __user__: dict | None = None) -> dict:
        """Edit the finished conversation; body["messages"] ends with the reply."""
        banned = self.valves.banned_word
        if banned and self._enabled(__user__):
            for message in body.get("messages", []):
                if message.get("role") == "assistant" and isinstance(message.get("content"), str):
                    message["content"] = message["content"].replace(banned, "***")
        return body
