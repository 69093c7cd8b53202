"""
title: Example Provider
author: example-dev
author_url: https://example.com
version: 2.1.0
description: A provider pipe with every common kind of valve.
license: MIT
requirements: httpx
"""

# Style imitated: large provider pipes (owndev's Azure/N8N pipes, rbb-dev's
# OpenRouter pipe, 2025): API keys defaulting to environment variables with a
# password input hint, Literal choices, SecretStr, textarea and select inputs,
# list and dict valves.

import os
from typing import Dict, List, Literal

from pydantic import BaseModel, Field, SecretStr


class Pipe:
    class Valves(BaseModel):
        API_KEY: str = Field(
            default=os.getenv("EXAMPLE_PROVIDER_API_KEY", ""),
            description="API key for the provider.",
            json_schema_extra={"input": {"type": "password"}},
        )
        MODEL: Literal["small", "large"] = Field(
            default="small", description="Which model size to call."
        )
        WEBHOOK_SECRET: SecretStr = Field(
            default=SecretStr(""), description="Shared secret for callbacks."
        )
        SYSTEM_PROMPT: str = Field(
            default="You are a helpful assistant.",
            description="Prepended to every conversation.",
            json_schema_extra={"input": {"type": "textarea"}},
        )
        REGION: str = Field(
            default="eu",
            description="Data residency region.",
            json_schema_extra={
                "input": {
                    "type": "select",
                    "options": [
                        {"value": "eu", "label": "Europe"},
                        {"value": "us", "label": "United States"},
                    ],
                }
            },
        )
        STOP_WORDS: List[str] = Field(default=["###"], description="Stop sequences.")
        EXTRA_HEADERS: Dict[str, str] = Field(
            default={}, description="Extra HTTP headers sent with each request."
        )
        TEMPERATURE: float = Field(default=0.7, ge=0.0, le=2.0)
        DEBUG: bool = Field(default=False, description="Log requests.")

    def __init__(self):
        self.valves = self.Valves()

    def pipe(self, body: dict, __user__: dict = None) -> str:
        if not self.valves.API_KEY:
            return "Please set the API key in the function's valves."
        key_hint = self.valves.API_KEY[:2] + "..." if len(self.valves.API_KEY) > 2 else "..."
        return (
            f"Would call the {self.valves.MODEL} model in {self.valves.REGION} "
            f"with key {key_hint} and {len(body.get('messages', []))} messages."
        )
