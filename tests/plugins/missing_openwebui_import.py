"""
title: Missing Open WebUI Import
author: fnplatform tests
version: 0.1.0
description: Uses an Open WebUI server module that fnplatform does not provide.
required_open_webui_version: 0.6.0
"""

from open_webui.routers.audio import transcribe
from pydantic import BaseModel


class Pipe:
    class Valves(BaseModel):
        pass

    def __init__(self):
        self.valves = self.Valves()

    async def pipe(self, body: dict, __request__=None, __user__: dict = None) -> str:
        return "uploaded"
