"""
title: Hostile Events
author: fnplatform tests
version: 0.1.0
description: Asked to "attack", sends every event with script-injection attempts in each field the page shows.
license: MIT
"""

# Style imitated: none; a hostile or hijacked plugin. Every payload would run script
# (an alert, or window.__pwned = 1) if the page let it through as markup or a URL:
# status descriptions, citations (names, URLs, content), notifications, file names
# and URLs, the chat's title and tags, and an embed that reaches for its parent.

IMG = "<img src=x onerror=window.__pwned=1>"
SVG = "<svg onload=alert(1)><script>alert(1)</script></svg>"
SCRIPT = "<script>window.__pwned=1</script>"
JS = "javascript:window.__pwned=1"

EMBED = """<script>
  try { parent.__pwned = 1; } catch (error) {}
  try { top.document.body.innerHTML = "pwned"; } catch (error) {}
  alert(1);
</script><p>An embed that tried its parent.</p>"""


class Pipe:
    async def pipe(self, body: dict, __event_emitter__=None) -> str:
        if "attack" not in body["messages"][-1]["content"]:
            return "Ready."
        emit = __event_emitter__
        await emit({"type": "status", "data": {"description": SVG, "done": False}})
        await emit({"type": "status", "data": {"description": IMG + SCRIPT, "done": True}})
        source = {"name": IMG, "url": JS, "id": SCRIPT}
        await emit({"type": "citation", "data": {"source": source, "document": [SCRIPT + SVG], "metadata": [{"name": SVG, "url": JS}]}})
        await emit({"type": "source", "data": {"source": {"name": SCRIPT, "url": "javascript:alert(1)"}, "document": [IMG]}})
        await emit({"type": "notification", "data": {"type": "warning", "content": IMG + SVG}})
        await emit({"type": "notification", "data": {"type": "error", "content": SCRIPT}})
        files = [
            {"type": "file", "name": SVG, "url": JS},
            {"type": "image", "name": IMG, "url": "data:text/html,<script>alert(1)</script>"},
            {"type": "file", "id": "\" onclick=\"alert(1)", "name": SCRIPT},
        ]
        await emit({"type": "files", "data": {"files": files}})
        await emit({"type": "embeds", "data": {"embeds": [EMBED]}})
        await emit({"type": "chat:title", "data": IMG + SCRIPT})
        await emit({"type": "chat:tags", "data": [SCRIPT, SVG, IMG]})
        await emit({"type": "chat:message:error", "data": {"error": {"content": IMG + SVG}}})
        return f"See [1] and [2]. {IMG} End of attempts."
