"""
title: Event Script
author: fnplatform tests
version: 0.1.0
description: Emits the events its user's message lists (JSON), waits for the test's gate, then answers.
license: MIT
"""

# Style imitated: none; a test harness. The last user message is JSON:
# {"events": [...], "gate": "name", "after": [...], "answer": "text"}. The pipe emits
# each of "events" in order, waits until the test opens the gate (tests.support.gates:
# the inline executor only, in the test process), emits "after", and returns "answer".

import asyncio
import json

from tests.support.gates import wait_gate


class Pipe:
    async def pipe(self, body: dict, __event_emitter__=None) -> str:
        order = json.loads(body["messages"][-1]["content"])
        for event in order.get("events", []):
            await __event_emitter__(event)
        if order.get("gate"):
            await asyncio.to_thread(wait_gate, order["gate"])
        for event in order.get("after", []):
            await __event_emitter__(event)
        return order.get("answer", "")
