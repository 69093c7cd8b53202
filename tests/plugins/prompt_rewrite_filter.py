"""
title: Prompt Rewriter
author: community
version: 0.4.1
license: MIT
description: Asks a helper model to rewrite the user's prompt before the main model sees it.
"""

# Style: Fu-Jie's filters: Users.get_user_by_id called without await, then
# `await generate_chat_completion(__request__, payload, user=user, bypass_filter=True)`.
from pydantic import BaseModel, Field

from open_webui.models.users import Users
from open_webui.utils.chat import generate_chat_completion


class Filter:
    class Valves(BaseModel):
        priority: int = Field(default=-10)
        helper_model: str = Field(default="fake-small")

    def __init__(self):
        self.valves = self.Valves()

    async def inlet(self, body: dict, __user__: dict, __request__=None, __task__=None) -> dict:
        if __task__:
            return body
        user = Users.get_user_by_id(__user__["id"])
        last = body["messages"][-1]
        payload = {
            "model": self.valves.helper_model,
            "messages": [{"role": "user", "content": f"rewrite {last['content']}"}],
            "stream": False,
        }
        answer = await generate_chat_completion(__request__, payload, user=user, bypass_filter=True)
        last["content"] = answer["choices"][0]["message"]["content"]
        return body
