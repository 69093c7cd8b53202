"""Valves fixtures: a plugin with Valves and UserValves, written the way community plugins are."""

import pytest
from cryptography.fernet import Fernet

VALVES_PIPE = '''"""
title: Valves Pipe
description: A pipe with global and per-user valves.
"""
import os
from typing import Literal

from pydantic import BaseModel, Field


class Pipe:
    class Valves(BaseModel):
        OPENAI_API_KEY: str = Field(default=os.getenv("VALVES_TEST_KEY", ""), description="Key")
        BASE_URL: str = Field(default="https://api.example.com", description="Where to send")
        MAX_TOKENS: int = Field(default=256, ge=1)
        TEMPERATURE: float = 0.7
        STREAM: bool = True
        MODE: Literal["fast", "slow"] = "fast"

    class UserValves(BaseModel):
        PERSONAL_TOKEN: str = ""
        GREETING: str = "Hello"
        SHOUT: bool = False
        LANGUAGE: str = Field(
            default="en",
            json_schema_extra={"input": {"type": "select", "options": "language_options"}},
        )

        @classmethod
        def language_options(cls, __user__=None):
            options = [{"value": "en", "label": "English"}, {"value": "fr", "label": "French"}]
            if __user__:
                options.append({"value": "x-" + __user__["name"], "label": "Mine"})
            return options

    def __init__(self):
        self.valves = self.Valves()

    def pipe(self, body):
        return "ok"
'''

NO_VALVES_PIPE = (
    '"""\ntitle: Bare\n"""\nclass Pipe:\n    def pipe(self, body):\n        return "ok"\n'
)


@pytest.fixture(autouse=True)
def _secrets_key(settings):
    settings.FNPLATFORM_SECRETS_KEY = Fernet.generate_key().decode()


@pytest.fixture
def valves_pipe(make_function):
    """An active pipe with Valves and UserValves."""
    return make_function("valves_pipe", content=VALVES_PIPE, is_active=True)


@pytest.fixture
def bare_pipe(make_function):
    """An active pipe without any valves."""
    return make_function("bare_pipe", content=NO_VALVES_PIPE, is_active=True)
