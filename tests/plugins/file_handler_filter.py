"""
title: Inline Text Files
author: example-dev
version: 0.2.0
description: Puts attached text files straight into the system prompt instead of RAG.
license: MIT
"""

# Style imitated: "full document" filters from the community (2024-2025) that set
# self.file_handler = True so the built-in retrieval skips the files, then read
# body.get("files") themselves in inlet and inject the extracted text.

from typing import Optional

from pydantic import BaseModel, Field

from open_webui.utils.misc import add_or_update_system_message


class Filter:
    class Valves(BaseModel):
        priority: int = Field(default=0, description="Filter order.")
        max_chars_per_file: int = Field(
            default=20000, description="Longer files are cut to this many characters."
        )

    def __init__(self):
        self.valves = self.Valves()
        self.file_handler = True

    def inlet(self, body: dict, __user__: Optional[dict] = None) -> dict:
        files = body.get("files") or []
        if not files:
            return body
        chunks = []
        for item in files:
            file = item.get("file", item)
            name = file.get("filename") or item.get("name") or "file"
            content = (file.get("data") or {}).get("content", "")
            if content:
                chunks.append(f"<file name=\"{name}\">\n{content[: self.valves.max_chars_per_file]}\n</file>")
        if chunks:
            add_or_update_system_message(
                "Attached files:\n" + "\n".join(chunks), body.setdefault("messages", []), append=True
            )
        return body
