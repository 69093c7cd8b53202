"""
title: Every Event
author: fnplatform tests
version: 0.1.0
description: Asked for "events", emits one of each event type Open WebUI's pages show; otherwise says it is ready.
license: MIT
"""

# Style imitated: RAG and research pipes (suurt8ll's citations example, the web-search
# pipes): citations first, the answer through message/replace/chat:completion events
# rather than yields, files and an HTML chart, a toast, and a title and tags for the
# chat. Every type of Open WebUI's event table is here once (its alias too, where it
# has one), and one type nobody knows.

import asyncio

from pydantic import BaseModel, Field

MOON = {
    "source": {"name": "Moon facts", "url": "https://example.org/moon", "id": "moon"},
    "document": ["The Moon is 384,400 km from the Earth, on average."],
    "metadata": [{"source": "moon"}],
}
TIDES = {"source": {"name": "Tides handbook"}, "document": ["Tides follow the Moon."]}
ORBIT = {"source": {"name": "Orbit notes", "url": "https://example.org/orbit"}, "document": ["27.3 days."]}
CHART = """<!doctype html>
<html><head><style>body{font-family:sans-serif;margin:0;padding:12px}.bar{background:#2f6fdf;height:18px;margin:4px 0}</style></head>
<body><h2>Moon distance chart</h2><div id="bars"></div>
<script>
  for (const km of [363, 384, 405]) {
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = (km - 300) * 3 + "px";
    bar.title = km + " thousand km";
    document.getElementById("bars").append(bar);
  }
  document.body.append(Object.assign(document.createElement("p"), {textContent: "Drawn by its script"}));
</script></body></html>"""


class Pipe:
    class Valves(BaseModel):
        FILE_ID: str = Field(default="", description="A stored file of the user's to attach.")
        # The answer stays streaming a moment after its last event, so a page is seen
        # drawing the events live (before the end redraws the whole message).
        HOLD_SECONDS: float = Field(default=0.5, description="Pause before the answer ends.")

    def __init__(self):
        self.valves = self.Valves()

    async def pipe(self, body: dict, __event_emitter__=None) -> str:
        if "events" not in body["messages"][-1]["content"]:
            return "Ready: ask for events."
        emit = __event_emitter__
        await emit({"type": "status", "data": {"description": "Looking up the Moon", "done": False}})
        await emit({"type": "citation", "data": MOON})
        await emit({"type": "source", "data": TIDES})
        await emit({"type": "replace", "data": {"content": "Draft."}})
        await emit({"type": "chat:message", "data": {"content": "Second draft."}})
        usage = {"prompt_tokens": 11, "completion_tokens": 22, "total_tokens": 33}
        completion = {"content": "The Moon is far away [1].", "usage": usage, "sources": [ORBIT]}
        await emit({"type": "chat:completion", "data": completion})
        await emit({"type": "message", "data": {"content": " The tides follow it [2]."}})
        await emit({"type": "chat:message:delta", "data": {"content": " Its orbit takes a month [3]."}})
        files = [{"type": "file", "name": "Moon guide", "url": "https://example.org/moon-guide.pdf"}]
        if self.valves.FILE_ID:
            files.insert(0, {"type": "file", "id": self.valves.FILE_ID, "name": "moon-report.txt"})
        await emit({"type": "files", "data": {"files": files[:1]}})
        await emit({"type": "chat:message:files", "data": {"files": files}})
        await emit({"type": "embeds", "data": {"embeds": [CHART]}})
        await emit({"type": "notification", "data": {"type": "success", "content": "Three sources found"}})
        await emit({"type": "chat:title", "data": "The Moon and the tides"})
        await emit({"type": "chat:tags", "data": ["space", "tides"]})
        await emit({"type": "x-moon:phase", "data": {"phase": "waxing"}})
        await emit({"type": "error", "data": {"description": "A first error, replaced."}})
        error = {"content": "One source could not be reached."}
        await emit({"type": "chat:message:error", "data": {"error": error}})
        await emit({"type": "status", "data": {"description": "Answer written", "done": True}})
        await asyncio.sleep(self.valves.HOLD_SECONDS)
        return ""
