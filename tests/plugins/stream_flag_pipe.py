"""
title: Stream flag
author: fnplatform tests
version: 0.1.0
description: Reads body["stream"] unguarded, as many community pipes do.
"""


class Pipe:
    def pipe(self, body: dict) -> str:
        return f"stream={body['stream']}"
