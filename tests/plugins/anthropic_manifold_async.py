"""
title: Anthropic Manifold Pipe
author: justinh-rahb, christian-taillon
author_url: https://github.com/justinh-rahb
funding_url: https://github.com/open-webui
version: 0.3.0
required_open_webui_version: 0.5.0
license: MIT
"""

# Style imitated: the community Anthropic manifolds (2025): an async pipes()
# returning a fixed model list, and an async generator pipe() that parses the
# provider's SSE stream itself and yields text deltas. Image parts are converted
# to the provider's format. No network happens until pipe() is called.

import os
import json
from typing import AsyncGenerator, List, Union

import httpx
from pydantic import BaseModel, Field


class Pipe:
    API_VERSION = "2023-06-01"
    MODEL_URL = "https://api.anthropic.com/v1/messages"

    class Valves(BaseModel):
        ANTHROPIC_API_KEY: str = Field(
            default="",
            description="Your Anthropic API key.",
            json_schema_extra={"input": {"type": "password"}},
        )
        MAX_TOKENS: int = Field(default=4096, ge=1, le=64000)

    def __init__(self):
        self.type = "manifold"
        self.id = "anthropic"
        self.name = "anthropic/"
        self.valves = self.Valves(
            **{"ANTHROPIC_API_KEY": os.getenv("ANTHROPIC_API_KEY", "")}
        )

    def get_anthropic_models(self) -> List[dict]:
        return [
            {"id": "claude-3-5-haiku-latest", "name": "claude-3.5-haiku"},
            {"id": "claude-3-7-sonnet-latest", "name": "claude-3.7-sonnet"},
            {"id": "claude-sonnet-4-0", "name": "claude-sonnet-4"},
        ]

    async def pipes(self) -> List[dict]:
        return self.get_anthropic_models()

    def process_image(self, image_data: dict) -> dict:
        url = image_data["image_url"]["url"]
        if url.startswith("data:image"):
            mime_type, base64_data = url.split(",", 1)
            media_type = mime_type.split(":")[1].split(";")[0]
            return {
                "type": "image",
                "source": {"type": "base64", "media_type": media_type, "data": base64_data},
            }
        return {"type": "image", "source": {"type": "url", "url": url}}

    async def pipe(self, body: dict, __event_emitter__=None) -> AsyncGenerator[str, None]:
        system_message = ""
        messages = []
        for message in body["messages"]:
            if message["role"] == "system":
                system_message = message["content"]
                continue
            if isinstance(message.get("content"), list):
                content = []
                for item in message["content"]:
                    if item["type"] == "text":
                        content.append({"type": "text", "text": item["text"]})
                    elif item["type"] == "image_url":
                        content.append(self.process_image(item))
            else:
                content = [{"type": "text", "text": message.get("content", "")}]
            messages.append({"role": message["role"], "content": content})

        payload = {
            "model": body["model"][body["model"].find(".") + 1 :],
            "messages": messages,
            "max_tokens": body.get("max_tokens", self.valves.MAX_TOKENS),
            "stream": True,
        }
        if system_message:
            payload["system"] = str(system_message)

        headers = {
            "x-api-key": self.valves.ANTHROPIC_API_KEY,
            "anthropic-version": self.API_VERSION,
            "content-type": "application/json",
        }

        try:
            async with httpx.AsyncClient(timeout=300) as client:
                async with client.stream(
                    "POST", self.MODEL_URL, headers=headers, json=payload
                ) as response:
                    if response.status_code != 200:
                        text = await response.aread()
                        yield f"Error: HTTP {response.status_code}: {text.decode(errors='replace')}"
                        return
                    async for line in response.aiter_lines():
                        if not line.startswith("data: "):
                            continue
                        data = json.loads(line[6:])
                        if data.get("type") == "content_block_delta":
                            yield data["delta"].get("text", "")
                        elif data.get("type") == "message_stop":
                            break
        except Exception as e:
            if __event_emitter__:
                await __event_emitter__(
                    {"type": "status", "data": {"description": f"Error: {e}", "done": True}}
                )
            yield f"Error: {e}"
