"""Mirrors Open WebUI's `open_webui.utils.misc`: the pure message and string helpers.

Messages are OpenAI chat dicts: `{"role": ..., "content": ...}` where content is a
string or a list of parts (`{"type": "text", "text": ...}`, `{"type": "image_url", ...}`).
Behaviour follows upstream (v0.11.0), including its quirks, because plugins were
written against it. Deliberate differences, all where upstream would crash or hang
or silently accept a typo: a message without a `role` is skipped (not KeyError),
get_message_list stops on a parentId cycle, deep_update replaces a non-dict value
with the merged mapping, and parse_duration rejects text that is not all
number+unit pairs.
"""

import collections.abc
import hashlib
import re
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

Message = dict[str, Any]

_EMAIL = re.compile(r"[^@]+@[^@]+\.[^@]+")
_DURATION_PART = re.compile(r"(-?\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_WHOLE = re.compile(r"(?:\s*-?\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+\s*")
_DURATION_UNITS = {
    "ms": "milliseconds",
    "s": "seconds",
    "m": "minutes",
    "h": "hours",
    "d": "days",
    "w": "weeks",
}


def deep_update(d: dict, u: collections.abc.Mapping) -> dict:
    """Merge `u` into `d` recursively (nested mappings are merged, not replaced); return `d`."""
    for key, value in u.items():
        if isinstance(value, collections.abc.Mapping):
            current = d.get(key)
            d[key] = deep_update(current if isinstance(current, dict) else {}, value)
        else:
            d[key] = value
    return d


def get_allow_block_lists(filter_list: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """Split a filter list into allowed entries and `!`-prefixed blocked entries."""
    allow_list: list[str] = []
    block_list: list[str] = []
    for entry in filter_list or []:
        if entry.startswith("!"):
            block_list.append(entry[1:].strip())
        else:
            allow_list.append(entry.strip())
    return allow_list, block_list


def is_string_allowed(
    string: str | Sequence[str], filter_list: Sequence[str] | None = None
) -> bool:
    """Return whether a string (or any of several) passes an allow/block suffix list.

    Upstream matches by suffix because the lists hold domains: `example.com` also
    allows `docs.example.com`. A non-empty allow list requires a match; a block
    entry (`!bad.com`) always rejects.
    """
    if not filter_list:
        return True
    allow_list, block_list = get_allow_block_lists(filter_list)
    strings = [string] if isinstance(string, str) else list(string)
    if allow_list and not any(s.endswith(a) for s in strings for a in allow_list):
        return False
    return not any(s.endswith(b) for s in strings for b in block_list)


def get_message_list(messages_map: dict[str, Message] | None, message_id: str | None) -> list:
    """Return the chain of messages from the root to `message_id`, following `parentId`."""
    if not messages_map:
        return []
    current = messages_map.get(message_id) if message_id is not None else None
    chain: list[Message] = []
    seen: set[int] = set()
    # Guard against a corrupted history whose parentId links form a cycle.
    while current and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        parent_id = current.get("parentId")
        current = messages_map.get(parent_id) if parent_id else None
    chain.reverse()
    return chain


def get_content_from_message(message: Message) -> str | None:
    """Return a message's text: the string content, or the first text part of a list."""
    content = message.get("content")
    if not isinstance(content, list):
        return content
    for part in content:
        # Upstream returns the first text part only; chat UIs send one text part per message.
        if isinstance(part, dict) and part.get("type") == "text":
            return part.get("text")
    return None


def get_messages_content(messages: list[Message]) -> str:
    """Return the messages as `ROLE: text` lines."""
    return "\n".join(
        f"{str(message.get('role', '')).upper()}: {get_content_from_message(message)}"
        for message in messages
    )


def _last_with_role(messages: list[Message], role: str) -> Message | None:
    for message in reversed(messages or []):
        if message.get("role") == role:
            return message
    return None


def get_last_user_message_item(messages: list[Message]) -> Message | None:
    """Return the last user message dict (with any image parts), or None."""
    return _last_with_role(messages, "user")


def get_last_user_message(messages: list[Message]) -> str | None:
    """Return the text of the last user message, or None when there is none."""
    message = get_last_user_message_item(messages)
    return None if message is None else get_content_from_message(message)


def get_last_assistant_message_item(messages: list[Message]) -> Message | None:
    """Return the last assistant message dict, or None."""
    return _last_with_role(messages, "assistant")


def get_last_assistant_message(messages: list[Message]) -> str | None:
    """Return the text of the last assistant message, or None when there is none."""
    message = get_last_assistant_message_item(messages)
    return None if message is None else get_content_from_message(message)


def get_system_message(messages: list[Message]) -> Message | None:
    """Return the first system message, or None."""
    for message in messages or []:
        if message.get("role") == "system":
            return message
    return None


def remove_system_message(messages: list[Message]) -> list[Message]:
    """Return a new list without any system message (the input is left as is)."""
    return [message for message in messages or [] if message.get("role") != "system"]


def pop_system_message(messages: list[Message]) -> tuple[Message | None, list[Message]]:
    """Return `(first system message or None, the other messages)`."""
    return get_system_message(messages), remove_system_message(messages)


def update_message_content(message: Message, content: str, append: bool = True) -> Message:
    """Add `content` after (or before) a message's text, on its own line; return the message."""
    if isinstance(message.get("content"), list):
        # Upstream edits every text part of a multi-part message.
        for part in message["content"]:
            if isinstance(part, dict) and part.get("type") == "text":
                part["text"] = _join(part.get("text", ""), content, append)
    else:
        message["content"] = _join(message.get("content"), content, append)
    return message


def _join(existing: Any, content: str, append: bool) -> str:
    return f"{existing}\n{content}" if append else f"{content}\n{existing}"


def replace_system_message_content(content: str, messages: list[Message]) -> list[Message]:
    """Replace the content of the first system message, if any; return the list."""
    message = get_system_message(messages)
    if message is not None:
        message["content"] = content
    return messages


def prepend_to_first_user_message_content(content: str, messages: list[Message]) -> list[Message]:
    """Put `content` on a line before the first user message's text; return the list."""
    for message in messages:
        if message.get("role") == "user":
            update_message_content(message, content, append=False)
            break
    return messages


def add_or_update_system_message(
    content: str, messages: list[Message], append: bool = False
) -> list[Message]:
    """Prepend (or append) to a leading system message, or insert one first; return the list.

    Only a system message at index 0 is updated, as upstream does.
    """
    if messages and messages[0].get("role") == "system":
        update_message_content(messages[0], content, append)
    else:
        messages.insert(0, {"role": "system", "content": content})
    return messages


def add_or_update_user_message(
    content: str, messages: list[Message], append: bool = True
) -> list[Message]:
    """Append (or prepend) to a trailing user message, or add one at the end; return the list."""
    if messages and messages[-1].get("role") == "user":
        update_message_content(messages[-1], content, append)
    else:
        messages.append({"role": "user", "content": content})
    return messages


def append_or_update_assistant_message(content: str, messages: list[Message]) -> list[Message]:
    """Append to a trailing assistant message, or add one at the end; return the list."""
    if messages and messages[-1].get("role") == "assistant":
        messages[-1]["content"] = f"{messages[-1]['content']}\n{content}"
    else:
        messages.append({"role": "assistant", "content": content})
    return messages


def openai_chat_message_template(model: str) -> dict[str, Any]:
    """Return the fields shared by completion and chunk objects."""
    return {
        "id": f"{model}-{uuid.uuid4()}",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "logprobs": None, "finish_reason": None}],
    }


def openai_chat_chunk_message_template(
    model: str,
    content: str | None = None,
    reasoning_content: str | None = None,
    tool_calls: list[dict] | None = None,
    usage: dict | None = None,
) -> dict[str, Any]:
    """Return a `chat.completion.chunk`; with no content at all it is the finishing chunk."""
    template = openai_chat_message_template(model)
    template["object"] = "chat.completion.chunk"
    delta: dict[str, Any] = {}
    # Upstream tests truthiness, so an empty string also counts as "no content".
    if content:
        delta["content"] = content
    if reasoning_content:
        delta["reasoning_content"] = reasoning_content
    if tool_calls:
        delta["tool_calls"] = tool_calls
    choice = template["choices"][0]
    choice["delta"] = delta
    if not delta:
        choice["finish_reason"] = "stop"
    if usage:
        template["usage"] = usage
    return template


def openai_chat_completion_message_template(
    model: str,
    message: str | None = None,
    reasoning_content: str | None = None,
    tool_calls: list[dict] | None = None,
    usage: dict | None = None,
) -> dict[str, Any]:
    """Return a complete, non-streamed `chat.completion` object."""
    template = openai_chat_message_template(model)
    template["object"] = "chat.completion"
    choice = template["choices"][0]
    if message is not None:
        choice["message"] = {"role": "assistant", "content": message}
        if reasoning_content:
            choice["message"]["reasoning_content"] = reasoning_content
        if tool_calls:
            choice["message"]["tool_calls"] = tool_calls
    choice["finish_reason"] = "stop"
    if usage:
        template["usage"] = usage
    return template


def get_gravatar_url(email: str) -> str:
    """Return the Gravatar URL for an email (SHA-256 of the trimmed, lower-cased address)."""
    digest = hashlib.sha256(str(email).strip().lower().encode()).hexdigest()
    return f"https://www.gravatar.com/avatar/{digest}?d=mp"


def calculate_sha256_string(string: str) -> str:
    """Return the hex SHA-256 of a string's UTF-8 bytes."""
    return hashlib.sha256(string.encode("utf-8")).hexdigest()


def validate_email_format(email: str) -> bool:
    """Return whether the text looks like an email address (`@localhost` is accepted)."""
    if email.endswith("@localhost"):
        return True
    return bool(_EMAIL.match(email))


def sanitize_filename(file_name: str) -> str:
    """Lower-case, drop punctuation (dots included) and turn whitespace runs into dashes."""
    cleaned = re.sub(r"[^\w\s]", "", file_name.lower())
    return re.sub(r"\s+", "-", cleaned)


def extract_folders_after_data_docs(path: str | Path) -> list[str]:
    """Return the cumulative folder tags between `data/docs/` and the file name."""
    parts = Path(path).parts
    try:
        start = parts.index("docs", parts.index("data") + 1) + 1
    except ValueError:
        return []
    folders = parts[start:-1]
    return ["/".join(folders[: index + 1]) for index in range(len(folders))]


def parse_duration(duration: str) -> timedelta | None:
    """Parse `1h30m`, `2d`, `500ms`, `1.5w`...; return None for "-1" and "0" (no expiry).

    Raise ValueError when the text is not made only of number+unit pairs (upstream
    ignores stray text; rejecting it catches typos such as `1hr`).
    """
    if duration in ("-1", "0"):
        return None
    if not _DURATION_WHOLE.fullmatch(duration):
        raise ValueError(f"Invalid duration string: {duration!r}")
    total = timedelta()
    for number, unit in _DURATION_PART.findall(duration):
        total += timedelta(**{_DURATION_UNITS[unit]: float(number)})
    return total
