"""
title: Loguru audit filter
author: community
version: 0.3.1
license: MIT
"""

# Style: filters that log with loguru (16 files), never declaring it. The filter
# also keeps what it logged, so the test can see loguru really ran in the worker.
from loguru import logger
from pydantic import BaseModel

LOGGED = []
logger.add(lambda message: LOGGED.append(message.record["message"]), level="INFO")


class Filter:
    class Valves(BaseModel):
        priority: int = 0

    def __init__(self):
        self.valves = self.Valves()

    def inlet(self, body: dict, __user__: dict = None) -> dict:
        name = (__user__ or {}).get("name", "someone")
        logger.bind(filter="audit").info(f"inlet from {name}: {len(body.get('messages', []))} messages")
        body["audit"] = list(LOGGED)
        return body

    def outlet(self, body: dict) -> dict:
        logger.info("outlet")
        return body
