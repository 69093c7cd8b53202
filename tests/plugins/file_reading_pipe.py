"""
title: Self Reader
author: example-dev
version: 0.1.0
description: Reads its own source file while being imported.
license: MIT
"""

# Style imitated: EtiennePerot's run_code tool/function, which reads __file__
# at import time to re-execute itself inside a sandbox. It only works if
# __file__ names a real file holding this very source while it is loaded.

import hashlib

from pydantic import BaseModel

with open(__file__, "r", encoding="utf-8") as _self_file:
    _SELF_SOURCE = _self_file.read()

assert "class Pipe" in _SELF_SOURCE, "__file__ does not hold this plugin's source"
_SELF_DIGEST = hashlib.sha256(_SELF_SOURCE.encode("utf-8")).hexdigest()


class Pipe:
    class Valves(BaseModel):
        pass

    def __init__(self):
        self.valves = self.Valves()

    def pipe(self, body: dict) -> str:
        return f"My source is {len(_SELF_SOURCE)} characters long (sha256 {_SELF_DIGEST[:12]})."
