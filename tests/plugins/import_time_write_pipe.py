"""
title: Self Registering Pipe
author: fnplatform tests
version: 0.1.0
description: Renames its author at import time, which a read-only load refuses.
license: MIT
"""

# Community-shaped: a "setup" step at import that writes host data (here the first
# user's name). Loading is read-only, so this must fail, naming the method.

from open_webui.models.users import Users

_first = Users.get_first_user()
if _first:
    Users.update_user_by_id(_first.id, {"name": "Plugin Bot"})


class Pipe:
    def pipe(self, body: dict) -> str:
        return "registered"
