"""
title: Rich card
author: community
version: 0.2.0
license: MIT
description: Renders the message as an HTML card, the way Fu-Jie's actions do.
"""

# Style: actions that return fastapi's HTMLResponse with an inline disposition
# (rendered by Open WebUI as an embed), or, since upstream PR #21294, a plain
# (html, headers) tuple; and JSONResponse for a plain result.
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel


class Action:
    class Valves(BaseModel):
        MODE: str = "response"

    def __init__(self):
        self.valves = self.Valves()

    async def action(self, body: dict, __user__=None, __event_emitter__=None):
        text = body["messages"][-1]["content"]
        html = f"<div class='card'><h3>Card</h3><p>{text}</p></div>"
        headers = {"Content-Disposition": "inline"}
        if self.valves.MODE == "tuple":
            return html, headers
        if self.valves.MODE == "json":
            return JSONResponse({"content": text.upper()})
        return HTMLResponse(content=html, headers=headers)
