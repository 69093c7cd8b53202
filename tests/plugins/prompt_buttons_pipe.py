"""
title: Prompt Buttons
author: fnplatform tests
version: 0.1.0
description: Answers what it was asked, under a card of follow-up buttons that post prompts back to the chat.
license: MIT
"""

# Style: the follow-up cards of community pipes and visualisers: an HTML card sent as
# an `embeds` event, whose buttons call a `sendPrompt()` helper posting Open WebUI's
# `input:prompt:submit` to the parent, or only fill the chat input (`input:prompt`),
# or send what the input holds (`action:submit`). A second widget posts a prompt as
# soon as it loads, with nobody clicking (some "auto-continue" widgets do): the chat
# must not take that one. Asked "slowly", it writes its answer slowly, so a button can
# be clicked while the answer is still being written.

import asyncio

from pydantic import BaseModel, Field

CARD = """<!doctype html>
<html><head><style>
  body{font-family:sans-serif;margin:0;padding:12px;background:#f3f6ff}
  button{margin:4px;padding:6px 10px}
</style></head>
<body>
  <h3>Follow-up questions</h3>
  <button id="ask">Ask about the tides</button>
  <button id="draft">Draft a question</button>
  <button id="send">Send the draft</button>
  <script>
    function sendPrompt(text) {
      parent.postMessage({ type: 'input:prompt:submit', text: text }, '*');
    }
    function fillPrompt(text) {
      parent.postMessage({ type: 'input:prompt', text: text }, '*');
    }
    document.getElementById('ask').addEventListener('click', function () {
      sendPrompt('Tell me about the tides');
    });
    document.getElementById('draft').addEventListener('click', function () {
      fillPrompt('What makes the tides?');
    });
    document.getElementById('send').addEventListener('click', function () {
      parent.postMessage({ type: 'action:submit' }, '*');
    });
  </script>
</body></html>"""

# 260px tall exactly (taller than a frame starts): once its frame is that tall, the
# page has read the prompt it posted first (a frame's messages arrive in order).
AUTO = """<!doctype html>
<html><body style="margin:0"><div style="height:260px">Auto-continue</div>
<script>
  parent.postMessage({ type: 'input:prompt:submit', text: 'Posted on load' }, '*');
</script></body></html>"""


class Pipe:
    class Valves(BaseModel):
        SLOW_STEPS: int = Field(default=120, description="Half-second pauses of a slow answer.")

    def __init__(self):
        self.valves = self.Valves()

    async def pipe(self, body: dict, __event_emitter__=None):
        question = ""
        for message in reversed(body.get("messages", [])):
            if message.get("role") == "user":
                question = str(message.get("content", ""))
                break
        if __event_emitter__:
            await __event_emitter__({"type": "embeds", "data": {"embeds": [CARD, AUTO]}})
        if "slowly" in question.lower():
            for _ in range(self.valves.SLOW_STEPS):
                yield "."
                await asyncio.sleep(0.5)
        yield f"You asked: {question}"
