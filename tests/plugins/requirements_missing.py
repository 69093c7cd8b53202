"""
title: Requirements Missing
author: fnplatform tests
version: 0.1.0
description: Declares a requirement this server does not have, with a comma inside its version range.
requirements: definitely-not-installed-pkg>=1.0,<2, httpx
license: MIT
"""

from pydantic import BaseModel


class Pipe:
    class Valves(BaseModel):
        pass

    def __init__(self):
        self.valves = self.Valves()

    def pipe(self, body: dict) -> str:
        import definitely_not_installed_pkg

        return definitely_not_installed_pkg.answer()
