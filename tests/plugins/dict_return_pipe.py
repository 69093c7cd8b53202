"""
title: Canned Completion
author: example-dev
version: 0.1.0
description: Returns a complete OpenAI chat.completion object instead of text.
license: MIT
"""

# Style imitated: proxy pipes that forward a provider's non-streamed JSON as is
# (the official OpenAI manifold's `return r.json()` branch); here the dict is
# built by hand so no network is needed.

import time
import uuid

from pydantic import BaseModel


class Pipe:
    class Valves(BaseModel):
        pass

    def __init__(self):
        self.valves = self.Valves()

    def pipe(self, body: dict) -> dict:
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "dict_return_pipe"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "A complete answer."},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4},
        }
