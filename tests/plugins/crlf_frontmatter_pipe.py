"""
title: CRLF Pipe
author: windows-user
version: 0.1.0
description: Saved by a Windows editor, with CRLF line endings and a UTF-8 BOM.
license: MIT
"""

# Style imitated: files pasted from Windows editors (Notepad, older VS Code
# defaults): a UTF-8 byte-order mark before the opening quotes and CRLF line
# endings. This file is written byte for byte; keep its BOM and CRLFs.

from pydantic import BaseModel, Field


class Pipe:
    class Valves(BaseModel):
        GREETING: str = Field(default="Hello from Windows", description="Reply text.")

    def __init__(self):
        self.valves = self.Valves()

    def pipe(self, body: dict) -> str:
        return self.valves.GREETING
