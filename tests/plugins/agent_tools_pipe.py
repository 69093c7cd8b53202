"""
title: Little Agent
author: fnplatform tests
version: 0.3.1
description: Loads a bundled toolkit, describes its tools to the model, and calls one.
license: MIT
"""

# Community-shaped agentic pipe: builds tool specs with Open WebUI's helpers, binds
# reserved arguments, asks get_tools for the tools of the chat, and formats its log
# lines with Open WebUI's loguru format (falling back when loguru is absent).

import json
import logging

from open_webui.utils.logger import stdout_format
from open_webui.utils.plugin import extract_frontmatter, load_tool_module_by_id
from open_webui.utils.tools import (
    get_async_tool_function_and_apply_extra_params,
    get_tool_specs,
    get_tools,
)

log = logging.getLogger(__name__)

CALCULATOR = '''"""
title: Calculator
version: 1.0
"""
from typing import Optional


class Tools:
    def add(self, a: int, b: int, __user__: Optional[dict] = None) -> str:
        """Add two numbers.
        :param a: the first number
        :param b: the second number
        """
        return f"{a + b} for {(__user__ or {}).get('name', 'nobody')}"

    def _helper(self):
        return "not a tool"
'''


class Pipe:
    def __init__(self):
        self.toolkit, self.toolkit_meta = load_tool_module_by_id("calculator", content=CALCULATOR)
        self.log_format = stdout_format({"extra": {}})

    async def pipe(self, body: dict, __user__: dict, __request__=None, __metadata__=None):
        specs = get_tool_specs(self.toolkit)
        add = get_async_tool_function_and_apply_extra_params(
            self.toolkit.add, {"__user__": __user__, "__event_emitter__": None}
        )
        result = await add(a=2, b=3)
        chat_tools = get_tools(__request__, (__metadata__ or {}).get("tool_ids") or [], __user__, {})
        log.info("called %s", specs[0]["name"])
        return json.dumps(
            {
                "specs": specs,
                "result": result,
                "chat_tools": sorted(chat_tools),
                "toolkit": self.toolkit_meta.get("title"),
                "calculator": extract_frontmatter(CALCULATOR),
                "log_format": "{message}" in self.log_format,
            }
        )
