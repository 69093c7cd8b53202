"""
title: OpenAI Manifold Pipe
author: open-webui
author_url: https://github.com/open-webui
funding_url: https://github.com/open-webui
version: 0.1.2
license: MIT
"""

# Style imitated: the official OpenAI manifold from open-webui/functions (2024):
# legacy self.type/self.id, a "name" prefix, a sync pipes() method that lists
# models from the API, and a blocking pipe() that returns the response's
# iter_lines() directly when streaming. httpx stands in for requests here.

import os
import json
from typing import List, Union, Generator, Iterator

import httpx
from pydantic import BaseModel, Field


class Pipe:
    class Valves(BaseModel):
        NAME_PREFIX: str = Field(
            default="OPENAI/",
            description="The prefix applied before the model names.",
        )
        OPENAI_API_BASE_URL: str = Field(
            default="https://api.openai.com/v1",
            description="The base URL for OpenAI API endpoints.",
        )
        OPENAI_API_KEY: str = Field(
            default="",
            description="Required API key to retrieve the model list.",
            json_schema_extra={"input": {"type": "password"}},
        )

    def __init__(self):
        self.type = "manifold"
        self.id = "openai"
        self.name = "OpenAI: "
        self.valves = self.Valves()

    def pipes(self):
        if not self.valves.OPENAI_API_KEY:
            return [
                {
                    "id": "error",
                    "name": "API Key not provided.",
                },
            ]
        headers = {
            "Authorization": f"Bearer {self.valves.OPENAI_API_KEY}",
            "Content-Type": "application/json",
        }
        try:
            r = httpx.get(
                f"{self.valves.OPENAI_API_BASE_URL}/models", headers=headers, timeout=10
            )
            models = r.json()
            return [
                {
                    "id": model["id"],
                    "name": model["name"] if "name" in model else model["id"],
                }
                for model in models["data"]
                if "gpt" in model["id"]
            ]
        except Exception as e:
            print(f"Error: {e}")
            return [
                {
                    "id": "error",
                    "name": "Could not fetch models from OpenAI, please update the API Key in the valves.",
                },
            ]

    def pipe(self, body: dict, __user__: dict) -> Union[str, Generator, Iterator]:
        # Remove the "openai." prefix from the model id
        model_id = body["model"][body["model"].find(".") + 1 :]

        headers = {
            "Authorization": f"Bearer {self.valves.OPENAI_API_KEY}",
            "Content-Type": "application/json",
        }
        payload = {**body, "model": model_id}
        if "user" in payload:
            del payload["user"]
        if "chat_id" in payload:
            del payload["chat_id"]
        if "title" in payload:
            del payload["title"]

        try:
            client = httpx.Client(timeout=None)
            request = client.build_request(
                "POST",
                url=f"{self.valves.OPENAI_API_BASE_URL}/chat/completions",
                content=json.dumps(payload),
                headers=headers,
            )
            r = client.send(request, stream=body.get("stream", False))
            r.raise_for_status()

            if body.get("stream", False):
                return r.iter_lines()
            else:
                return r.json()
        except Exception as e:
            return f"Error: {e}"
