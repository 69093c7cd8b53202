"""
title: Request Relay
author: fnplatform tests
version: 0.3.0
description: Reads what Open WebUI's request carries, then asks another model through generate_chat_completion.
"""

# Style: the corpus's router/relay pipes: they read __request__.app.state (config and
# MODELS) and hand __request__ on to generate_chat_completion with the caller's UserModel.
# (`Request` is fastapi's, named in a string annotation and never imported.)
import json
from typing import Optional

from open_webui.models.users import Users
from open_webui.utils.chat import generate_chat_completion
from pydantic import BaseModel, Field


class Pipe:
    class Valves(BaseModel):
        HELPER_MODEL: str = Field(default="echo_pipe", description="Model asked for the answer")

    def __init__(self):
        self.valves = self.Valves()

    async def pipe(self, body: dict, __user__: dict, __request__: Optional["Request"] = None) -> str:
        config = __request__.app.state.config
        task_model = config.TASK_MODEL or config.TASK_MODEL_EXTERNAL or self.valves.HELPER_MODEL
        user = Users.get_user_by_id(__user__["id"])
        form_data = {
            "model": task_model,
            "messages": [{"role": "user", "content": "relay"}],
            "stream": False,
        }
        answer = await generate_chat_completion(__request__, form_data, user)
        seen = {
            "method": __request__.method,
            "path": __request__.url.path,
            "base_url": str(__request__.base_url),
            "user_agent": __request__.headers.get("User-Agent"),
            "custom_header": __request__.headers.get("x-relay-test"),
            "headers": dict(__request__.headers),
            "cookies": __request__.cookies,
            "query": dict(__request__.query_params),
            "client_host": __request__.client.host if __request__.client else None,
            "state_user": {"id": __request__.state.user.id, "email": __request__.state.user.email},
            "config": {
                "WEBUI_URL": config.WEBUI_URL,
                "ENABLE_OPENAI_API": config.ENABLE_OPENAI_API,
                "OPENAI_API_KEYS": config.OPENAI_API_KEYS,
                "ENABLE_WEB_SEARCH": config.ENABLE_WEB_SEARCH,
            },
            "models": sorted(__request__.app.state.MODELS),
            "answer": answer["choices"][0]["message"]["content"],
            "body_keys": sorted(body),
        }
        return json.dumps(seen)
