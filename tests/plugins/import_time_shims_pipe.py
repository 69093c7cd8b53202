"""
title: Team Roster Pipe
author: fnplatform tests
version: 0.2.0
description: Reads the user list and the model list once, at load, and answers with them.
license: MIT
"""

# Community-shaped: host data read at module level and in __init__, the way some
# admin dashboards and routers cache the roster at startup (plain, not awaited).

from open_webui.models.users import Users
from open_webui.models.models import Models
from open_webui.models.config import Config
from pydantic import BaseModel, Field

ROSTER = [u.email for u in Users.get_users()]
WEBUI_NAME = Config.get("webui.name", "Open WebUI")


class Pipe:
    class Valves(BaseModel):
        SEPARATOR: str = Field(default=",", description="Between e-mail addresses.")

    def __init__(self):
        self.valves = self.Valves()
        self.models = [m.id for m in Models.get_all_models()]
        self.first = Users.get_first_user()

    def pipe(self, body: dict, __user__: dict = None) -> str:
        first = self.first.email if self.first else "nobody"
        seen_now = Users.get_num_users()  # in a hook: the caller's own scope
        return (
            f"{WEBUI_NAME}|{self.valves.SEPARATOR.join(ROSTER)}|"
            f"{self.valves.SEPARATOR.join(self.models)}|{first}|{seen_now}"
        )
