"""
title: Usage Footer
author: fnplatform tests
version: 0.2.0
description: Adds a token-usage footer to the answer; annotations name classes it never imports.
"""

# Style: the usage/stats filters of the corpus: `-> Union[dict, "StreamingResponse"]`
# and string annotations naming Open WebUI types that are not imported here.
from typing import Optional, Union

from pydantic import BaseModel, Field


class Filter:
    class Valves(BaseModel):
        priority: int = Field(default=0, description="Filter order")
        footer: str = Field(default="-- usage", description="Footer text")

    def __init__(self):
        self.valves = self.Valves()

    async def inlet(self, body: dict, __user__: "Optional[UserModel]" = None, __request__: "Request" = None) -> dict:
        body["seen_by"] = (__user__ or {}).get("name")
        return body

    async def outlet(self, body, __model__: Optional[dict] = None, **kwargs) -> Union[dict, "StreamingResponse"]:
        messages = body.get("messages", [])
        if messages and messages[-1].get("role") == "assistant":
            model = (__model__ or {}).get("id", "?")
            messages[-1]["content"] += f"\n\n{self.valves.footer} ({model}, {kwargs['__user__']['name']})"
        return body
