"""
title: Max Turns Filter
author: open-webui
author_url: https://github.com/open-webui
funding_url: https://github.com/open-webui
version: 0.1.1
description: Stops a conversation after a number of turns; users may lower their own limit.
"""

# Style imitated: the official "Max Turns Filter" (open-webui/functions):
# admin Valves plus a per-user UserValves read as __user__["valves"].max_turns,
# and an inlet that raises to abort the turn with a message.

from pydantic import BaseModel, Field
from typing import Optional


class Filter:
    class Valves(BaseModel):
        priority: int = Field(
            default=0, description="Priority level for the filter operations."
        )
        max_turns_for_users: int = Field(
            default=8,
            description="Maximum allowable conversation turns for a non-admin user.",
        )
        max_turns_for_admins: int = Field(
            default=8,
            description="Maximum allowable conversation turns for an admin user.",
        )
        pass

    class UserValves(BaseModel):
        max_turns: int = Field(
            default=4, description="Maximum allowable conversation turns for a user."
        )
        pass

    def __init__(self):
        # Indicates custom file handling logic. This flag helps disengage default routines in favor of custom
        # implementations, informing the WebUI to defer file-related operations to designated methods within this class.
        # Alternatively, you can remove the files directly from the body in from the inlet hook
        # self.file_handler = True

        # Initialize 'valves' with specific configurations. Using 'Valves' instance helps encapsulate settings,
        # which ensures settings are managed cohesively and not confused with operational flags like 'file_handler'.
        self.valves = self.Valves()
        pass

    def inlet(self, body: dict, __user__: Optional[dict] = None) -> dict:
        # Modify the request body or validate it before processing by the chat completion API.
        print(f"inlet:{__name__}")
        print(f"inlet:body:{body}")
        print(f"inlet:user:{__user__}")

        if __user__ is not None:
            messages = body.get("messages", [])
            if __user__.get("role") == "admin":
                max_turns = min(
                    __user__["valves"].max_turns, self.valves.max_turns_for_admins
                )
            else:
                max_turns = min(
                    __user__["valves"].max_turns, self.valves.max_turns_for_users
                )

            current_turns = (
                len(messages) // 2
            )  # Each turn consists of a user message and an assistant response

            if current_turns >= max_turns:
                raise Exception(
                    f"Conversation turn limit exceeded. The maximum turns allowed is {max_turns}."
                )

        return body

    def outlet(self, body: dict, __user__: Optional[dict] = None) -> dict:
        print(f"outlet:{__name__}")
        print(f"outlet:body:{body}")
        print(f"outlet:user:{__user__}")
        return body
