"""
title: Agent Middleware Probe
author: fnplatform tests
version: 0.1.0
description: An agentic pipe's plumbing, the way planner-style community pipes use it.
license: MIT
"""

# Community-shaped (after Haervwe's planner and multi-model pipes): imports Open
# WebUI's middleware, MCP client, access control, headers, env names, skills and the
# built-in / terminal tool loaders, and uses each once, awaited as 0.9.1+ code does
# and plainly as older code does.

import json

from open_webui.env import (
    ENABLE_FORWARD_USER_INFO_HEADERS,
    FORWARD_SESSION_INFO_HEADER_CHAT_ID,
    FORWARD_SESSION_INFO_HEADER_MESSAGE_ID,
)
from open_webui.models.skills import SkillForm, SkillMeta, Skills
from open_webui.models.users import Users
from open_webui.utils.access_control import has_connection_access
from open_webui.utils.headers import include_user_info_headers
from open_webui.utils.mcp.client import MCPClient
from open_webui.utils.middleware import (
    add_file_context,
    chat_completion_files_handler,
    get_system_oauth_token,
    process_tool_result,
)
from open_webui.utils.tools import get_builtin_tools, get_terminal_tools


class Pipe:
    async def pipe(self, body: dict, __user__: dict, __request__=None, __event_emitter__=None) -> str:
        user = await Users.get_user_by_id(__user__["id"])
        metadata = {"chat_id": "local:abc", "message_id": "m1"}

        text, files, embeds = await process_tool_result(
            __request__, "lookup", {"answer": 42}, "", False, metadata, user
        )
        old_style = process_tool_result(
            __request__, "gallery", ["kept", "data:image/png;base64,AAAA"], "", False, metadata, user
        )
        mcp_text, _, _ = await process_tool_result(
            __request__, "mcp_tool", [{"type": "text", "text": '{"ok": true}'}], "mcp", False, metadata, user
        )

        messages = [{"role": "user", "content": "hi"}]
        same = await add_file_context(messages, "local:abc", user)
        files_body = {"messages": messages, "metadata": {"files": [{"id": "f1", "type": "file"}]}}
        events = []

        async def emitter(event):
            events.append(event)

        handled, flags = await chat_completion_files_handler(
            __request__, files_body, {"__event_emitter__": emitter}, user
        )
        oauth = await get_system_oauth_token(__request__, user)

        client = MCPClient()
        try:
            await client.connect("http://mcp.example/mcp", headers={})
            mcp = "connected"
        except Exception as exc:
            mcp = f"{type(exc).__name__}: {exc}"
        await client.disconnect()

        public = {"config": {"access_grants": [{"principal_type": "user", "principal_id": "*", "permission": "read"}]}}
        private = {"config": {}}
        access = [await has_connection_access(user, public), await has_connection_access(user, private)]

        headers = {"Content-Type": "application/json"}
        if not ENABLE_FORWARD_USER_INFO_HEADERS:
            headers = include_user_info_headers(headers, user)
        headers[FORWARD_SESSION_INFO_HEADER_CHAT_ID] = metadata["chat_id"]
        headers[FORWARD_SESSION_INFO_HEADER_MESSAGE_ID] = metadata["message_id"]

        skills = await Skills.get_skills_by_user_id(__user__["id"], "read")
        skill = Skills.get_skill_by_id("writer")
        try:
            Skills.insert_new_skill(
                __user__["id"], SkillForm(id="writer", name="Writer", content="# Write", meta=SkillMeta())
            )
            skill_write = "stored"
        except PermissionError as exc:
            skill_write = str(exc)

        builtin = await get_builtin_tools(__request__, {}, features={"web_search": True}, model={})
        builtin_plain = get_builtin_tools(__request__, {}, features={}, model={})
        terminal = await get_terminal_tools(__request__, "term-1", user, {})

        return json.dumps(
            {
                "text": text,
                "files": files,
                "embeds": embeds,
                "old_style": list(old_style),
                "mcp_text": mcp_text,
                "same_messages": same is messages and messages[0]["content"] == "hi",
                "handled_same": handled is files_body,
                "sources": flags,
                "events": events,
                "oauth": oauth,
                "mcp": mcp,
                "access": access,
                "headers": headers,
                "skills": skills,
                "skill": skill,
                "skill_write": skill_write,
                "builtin": builtin,
                "builtin_plain": builtin_plain,
                "terminal": terminal,
            }
        )
