"""
title: Legacy Prompt Inspector
author: early-adopter
version: 0.0.3
description: Reports what the last user message and system prompt were (written for Open WebUI 0.3).
required_open_webui_version: 0.3.9
"""

# Style imitated: mid-2024 functions written before open_webui became a package:
# bare `from utils.misc import ...`, which Open WebUI's loader rewrote to
# `from open_webui.utils.misc import ...`, next to a newer-style constants import.

from utils.misc import get_last_user_message, pop_system_message
from open_webui.constants import TASKS
from pydantic import BaseModel


class Pipe:
    class Valves(BaseModel):
        pass

    def __init__(self):
        self.valves = self.Valves()

    def pipe(self, body: dict, __task__=None) -> str:
        if __task__ == TASKS.TITLE_GENERATION:
            return "Prompt inspection"
        system_message, messages = pop_system_message(body["messages"])
        system = system_message["content"] if system_message else "(none)"
        return (
            f"System prompt: {system}\n"
            f"Last user message: {get_last_user_message(messages)}\n"
            f"Other messages: {len(messages)}"
        )
