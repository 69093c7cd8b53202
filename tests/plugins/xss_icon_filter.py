"""
title: Hostile Chip
author: fnplatform tests
version: 0.1.0
description: A toggle filter whose icon is a javascript: URL.
license: MIT
"""

# Style imitated: toggle filters with self.icon (a data URI, usually); a hostile one,
# which the page must not use as an image source at all.


class Filter:
    def __init__(self):
        self.toggle = True
        self.icon = "javascript:window.__pwned=1"

    def inlet(self, body: dict) -> dict:
        return body
