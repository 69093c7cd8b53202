"""
title: OpenAI Proxy (requests)
author: community
version: 0.3.0
license: MIT
description: Proxies chats to an OpenAI-compatible server with blocking requests, streaming iter_lines().
"""

# Style: the official OpenAI manifold of 2024 (open-webui/functions), which uses
# blocking `requests` inside a sync pipe and returns r.iter_lines() for streams.
from typing import Generator, Iterator, Union

import requests
from pydantic import BaseModel, Field


class Pipe:
    class Valves(BaseModel):
        BASE_URL: str = Field(default="http://127.0.0.1:9/v1")
        API_KEY: str = Field(default="", json_schema_extra={"input": {"type": "password"}})

    def __init__(self):
        self.type = "manifold"
        self.name = "Proxy: "
        self.valves = self.Valves()

    def pipes(self):
        r = requests.get(f"{self.valves.BASE_URL}/models", timeout=5)
        r.raise_for_status()
        return [{"id": m["id"], "name": m["id"]} for m in r.json()["data"]]

    def pipe(self, body: dict, __user__: dict) -> Union[str, Generator, Iterator]:
        model_id = body["model"][body["model"].find(".") + 1 :]
        payload = {**body, "model": model_id}
        headers = {"Authorization": f"Bearer {self.valves.API_KEY}"}
        r = requests.post(
            f"{self.valves.BASE_URL}/chat/completions",
            json=payload,
            headers=headers,
            stream=body.get("stream", False),
            timeout=30,
        )
        r.raise_for_status()
        if body.get("stream"):
            return r.iter_lines()
        return r.json()
