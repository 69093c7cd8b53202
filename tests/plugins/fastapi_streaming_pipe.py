"""
title: StreamingResponse pipe
author: community
version: 1.1.0
license: MIT
"""

# Style: pipes that hand back fastapi's StreamingResponse of OpenAI-shaped SSE (8 files
# in the corpus), written as Open WebUI expects: the response's body_iterator is
# passed through. With WAIT_URL set, the second chunk is only sent once that URL
# answers, so a test can see the first chunk arrive before the stream is complete.
import json
import time
from typing import Union

import httpx
from fastapi.responses import StreamingResponse
from pydantic import BaseModel


class Pipe:
    class Valves(BaseModel):
        WAIT_URL: str = ""

    def __init__(self):
        self.valves = self.Valves()

    def chunk(self, model: str, text: str) -> str:
        data = {
            "id": "chatcmpl-stream",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
        }
        return f"data: {json.dumps(data)}\n\n"

    async def pipe(self, body: dict) -> Union[str, "StreamingResponse"]:
        model = body.get("model", "")

        async def events():
            yield self.chunk(model, "first ")
            if self.valves.WAIT_URL:
                async with httpx.AsyncClient() as client:
                    await client.get(self.valves.WAIT_URL, timeout=60)
            yield self.chunk(model, "second")
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
