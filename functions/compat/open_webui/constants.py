"""Mirrors Open WebUI's `open_webui.constants`: task names and user-facing messages.

Upstream declares them `class X(str, Enum)` with `__str__` overridden; `StrEnum`
is that, built in: members are str instances that compare, hash, print and format
as their plain values, so `__task__ == TASKS.TITLE_GENERATION` holds when
`__task__` is the string "title_generation".

Upstream's message `DEFAULT` entries are callables taking an optional detail;
here they are static methods, which an Enum does not turn into members.
"""

from enum import StrEnum


class MESSAGES(StrEnum):
    """Success messages."""

    @staticmethod
    def DEFAULT(msg: str = "") -> str:
        return msg or ""

    @staticmethod
    def MODEL_ADDED(model: str = "") -> str:
        return f"The model '{model}' has been added successfully."

    @staticmethod
    def MODEL_DELETED(model: str = "") -> str:
        return f"The model '{model}' has been deleted successfully."


class ERROR_MESSAGES(StrEnum):
    """Error messages shown to users."""

    @staticmethod
    def DEFAULT(err: str = "") -> str:
        return "Something went wrong :/" if not err else f"[ERROR: {err}]"

    @staticmethod
    def MODEL_NOT_FOUND(name: str = "") -> str:
        return f"Model '{name}' was not found"

    NOT_FOUND = "We could not find what you're looking for :/"
    USER_NOT_FOUND = "We could not find what you're looking for :/"
    FILE_NOT_FOUND = "The specified file was not found."
    UNAUTHORIZED = "401 Unauthorized"
    ACCESS_PROHIBITED = "You do not have permission to access this resource."
    ACTION_PROHIBITED = "The requested action has been restricted as a security measure."
    INVALID_TOKEN = "Your session has expired or the token is invalid. Please sign in again."
    INVALID_URL = "Oops! The URL you provided is invalid. Please double-check and try again."
    ID_TAKEN = "Uh-oh! This id is already registered. Please choose another id string."
    EMPTY_CONTENT = (
        "The content provided is empty. "
        "Please ensure that there is text or data present before proceeding."
    )
    MALICIOUS = "Unusual activities detected, please try again in a few minutes."
    RATE_LIMIT_EXCEEDED = "API rate limit exceeded"
    API_KEY_NOT_FOUND = (
        "Oops! It looks like there's a hiccup. The API key is missing. "
        "Please make sure to provide a valid API key to access this feature."
    )


class TASKS(StrEnum):
    """Background task names, as passed to pipes in `__task__`."""

    DEFAULT = "default"
    TITLE_GENERATION = "title_generation"
    FOLLOW_UP_GENERATION = "follow_up_generation"
    TAGS_GENERATION = "tags_generation"
    EMOJI_GENERATION = "emoji_generation"
    QUERY_GENERATION = "query_generation"
    IMAGE_PROMPT_GENERATION = "image_prompt_generation"
    AUTOCOMPLETE_GENERATION = "autocomplete_generation"
    FUNCTION_CALLING = "function_calling"
    MOA_RESPONSE_GENERATION = "moa_response_generation"
    CONTEXT_COMPACTION = "context_compaction"
    MEMORY_REVIEW = "memory_review"
