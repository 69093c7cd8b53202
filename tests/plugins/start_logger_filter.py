"""
title: Request Logger
author: fnplatform tests
version: 0.1.0
description: Sets up Open WebUI's logging at import and logs every request.
license: MIT
"""

# Community-shaped: calls Open WebUI's start_logger at module level (to get its
# console format) and logs in inlet. It only configures its own process's logging.

import logging

from open_webui.utils.logger import start_logger

start_logger()
log = logging.getLogger("request_logger")


class Filter:
    def inlet(self, body: dict, __user__: dict = None) -> dict:
        log.info("request with %d messages", len(body.get("messages", [])))
        body["logged"] = True
        return body
