"""
title: Import Error
author: fnplatform tests
version: 0.1.0
description: Imports a package that is not installed, without declaring it.
"""

import definitely_not_installed_pkg
from pydantic import BaseModel


class Pipe:
    class Valves(BaseModel):
        pass

    def __init__(self):
        self.valves = self.Valves()

    def pipe(self, body: dict) -> str:
        return definitely_not_installed_pkg.run(body)
