"""Open WebUI's chat history shape, to and from Message rows (pure: no queries).

A chat document keeps its messages in `history`: {"messages": {id: message},
"currentId": id}, each message naming its `parentId` and `childrenIds`, and the
branch on show as the `messages` list. Here they are rows; this module reads
documents and message dicts into column values (`message_values`,
`document_nodes`) and renders rows back into that shape (`render_history`).

A message dict renders the keys it was written with, in their order, plus the
keys the server set: a plugin that stored {"content": "x"} reads back exactly
that, while the messages runs write carry Open WebUI's whole set.
"""

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from chat.models import Message, MessageStatus

# The keys of a message dict that columns (or relations) hold; `data` keeps them as
# null, only to remember the message has them.
COLUMN_KEYS = frozenset(
    {
        "id",
        "parentId",
        "childrenIds",
        "role",
        "content",
        "model",
        "timestamp",
        "done",
        "status",
        "statusHistory",
        "sources",
        "files",
        "embeds",
        "usage",
        "error",
    }
)
LIST_COLUMNS = ("sources", "files", "embeds")
# The keys of the messages runs write, as Open WebUI's frontend shapes an answer.
ANSWER_KEYS = ("id", "parentId", "childrenIds", "role", "content", "model", "timestamp")
ANSWER_KEYS += ("done", "status")
# Document keys that are the messages themselves (rebuilt from the rows).
HISTORY_KEYS = frozenset({"history", "messages"})
MAX_ID = 255


def clean(value: Any) -> Any:
    """`value` without NUL characters in its strings: PostgreSQL cannot store them."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {clean(str(k)): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def epoch(moment: datetime | None) -> int:
    """Open WebUI's timestamps: whole seconds since the epoch."""
    return int(moment.timestamp()) if moment else 0


def moment_of(timestamp: Any) -> datetime | None:
    """The time an Open WebUI timestamp (seconds, or milliseconds) names; None if none."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        return None
    try:
        seconds = timestamp / 1000 if timestamp > 10_000_000_000 else timestamp
    except OverflowError:  # an int past any float: no time at all
        return None
    if not 0 < seconds < time.time() + 86400:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)


def _invalid(message: str) -> ValidationError:
    return ValidationError(message, code="invalid_message")


def _error_value(value: Any) -> dict | None:
    if not value:
        return None
    return value if isinstance(value, dict) else {"content": str(value)}


@dataclass
class MessageValues:
    """What a message dict sets: column values (only those it names) and `data`."""

    columns: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    parent_id: str | None = None
    names_parent: bool = False
    status_events: list[dict] | None = None
    done: bool | None = None


def _list_of(raw: dict, key: str) -> list:
    value = raw[key]
    if value is None:
        return []
    if not isinstance(value, list):
        raise _invalid(f"A message's {key!r} must be a list.")
    return value


def _set_column(values: MessageValues, raw: dict, key: str) -> None:
    value = raw[key]
    if key in ("role", "model"):
        limit = Message._meta.get_field(key).max_length
        values.columns[key] = "" if value is None else str(value)[:limit]
    elif key == "content":
        # Not a string (content parts): kept whole in `data`, where the renderer finds it.
        if isinstance(value, str) or value is None:
            values.columns["content"] = value or ""
        else:
            values.columns["content"] = ""
            values.data["content"] = value
    elif key in LIST_COLUMNS:
        values.columns[key] = _list_of(raw, key)
    elif key == "usage":
        values.columns["usage"] = value if isinstance(value, dict) else None
    elif key == "error":
        values.columns["error"] = _error_value(value)
    elif key == "timestamp" and (created := moment_of(value)) is not None:
        values.columns["created_at"] = created


def _set_relation(values: MessageValues, raw: dict, key: str) -> None:
    value = raw[key]
    if key == "parentId":
        values.names_parent = True
        values.parent_id = str(value) if value not in (None, "") else None
    elif key == "statusHistory":
        values.status_events = [{"type": "status", "data": d} for d in _list_of(raw, key)]
    elif key == "done":
        values.done = value is not False


def message_values(raw: Any) -> MessageValues:
    """Read an Open WebUI message dict (NULs removed); raise ValidationError if it is not one."""
    if not isinstance(raw, dict):
        raise _invalid("A message must be an object.")
    raw = clean(raw)
    values = MessageValues()
    for key in raw:
        values.data[key] = None if key in COLUMN_KEYS else raw[key]
        if key in ("parentId", "statusHistory", "done"):
            _set_relation(values, raw, key)
        elif key in COLUMN_KEYS:
            _set_column(values, raw, key)
    return values


def status_of_new(values: MessageValues) -> str:
    """The status of a message a client wrote: only server runs stream, so an answer a
    client left unfinished (done: false) is one that never finished here."""
    if values.columns.get("error"):
        return MessageStatus.ERROR
    if values.done is False:
        return MessageStatus.INTERRUPTED
    return MessageStatus.DONE


def with_keys(data: dict, keys: Iterable[str]) -> dict:
    """`data` naming `keys` too (the server set them), in the order given."""
    missing = [key for key in keys if key not in data]
    return {**data, **dict.fromkeys(missing)} if missing else data


def filled_keys(values: dict[str, Any]) -> list[str]:
    """The message dict keys that these column values fill (non-empty), for `with_keys`."""
    keys = [key for key in (*LIST_COLUMNS, "usage", "error") if values.get(key)]
    if any(event.get("type") == "status" for event in values.get("events") or []):
        keys.append("statusHistory")
    return keys


def effective_status(message: Message, now: datetime | None = None) -> str:
    """The message's status, a streaming one whose run's lease ran out being interrupted
    (its process is gone; a sweep will store that)."""
    if message.status != MessageStatus.STREAMING:
        return message.status
    expires = message.lease_expires_at
    if expires is None or expires <= (now or timezone.now()):
        return MessageStatus.INTERRUPTED
    return message.status


@dataclass
class _Tree:
    """The rows' ids (pk -> message id) and each row's children (pk -> pks, in order)."""

    ids: dict[int, str]
    children: dict[int, list[int]]

    @classmethod
    def of(cls, messages: list[Message]) -> "_Tree":
        ids = {m.pk: m.message_id for m in messages}
        children: dict[int, list[int]] = {}
        for message in messages:
            if message.parent_id in ids:
                children.setdefault(message.parent_id, []).append(message.pk)
        return cls(ids, children)


def _column_value(message: Message, key: str, tree: _Tree, now: datetime) -> Any:
    if key == "content":
        # Content parts (not a string) are kept in `data` as written.
        stored = message.data.get("content")
        return message.content if stored is None else stored
    if key == "id":
        return message.message_id
    if key == "parentId":
        return tree.ids.get(message.parent_id)
    if key == "childrenIds":
        return [tree.ids[pk] for pk in tree.children.get(message.pk, [])]
    if key == "timestamp":
        return epoch(message.created_at)
    if key in ("done", "status"):
        status = effective_status(message, now)
        return status if key == "status" else status != MessageStatus.STREAMING
    if key == "statusHistory":
        return [e.get("data") for e in message.events if e.get("type") == "status"]
    return getattr(message, key)


def render_message(message: Message, tree: _Tree, now: datetime) -> dict[str, Any]:
    """A row as Open WebUI's message dict: the keys it has, each from its column or `data`."""
    return {
        key: _column_value(message, key, tree, now) if key in COLUMN_KEYS else value
        for key, value in message.data.items()
    }


def branch(messages: dict[str, dict], parents: dict[str, str | None], current: str | None):
    """The messages from the root down to `current` (Open WebUI's `messages` list)."""
    path, seen = [], set()
    while current in messages and current not in seen:
        seen.add(current)
        path.append(messages[current])
        current = parents.get(current)
    return path[::-1]


def render_history(
    messages: list[Message], current_id: str, now: datetime | None = None
) -> tuple[dict[str, Any], list[dict]]:
    """Return Open WebUI's `history` of these rows and the branch ending at current_id."""
    now = now or timezone.now()
    tree = _Tree.of(messages)
    rendered = {m.message_id: render_message(m, tree, now) for m in messages}
    parents = {m.message_id: tree.ids.get(m.parent_id) for m in messages}
    current = current_id if current_id in rendered else None
    history = {"messages": rendered, "currentId": current}
    return history, branch(rendered, parents, current)


def build_document(
    document: dict[str, Any], messages: list[Message], current_id: str, now=None
) -> dict[str, Any]:
    """The chat document with its `history` and `messages` built from the rows."""
    history, path = render_history(messages, current_id, now)
    rest = {k: v for k, v in document.items() if k not in HISTORY_KEYS}
    return {**rest, "history": history, "messages": path}


def document_rest(document: dict[str, Any]) -> dict[str, Any]:
    """The document without its messages (what the chat row keeps as given)."""
    return clean({k: v for k, v in document.items() if k not in HISTORY_KEYS})


def _message_id(value: Any) -> str:
    message_id = str(value)
    if not message_id or len(message_id) > MAX_ID:
        raise _invalid(f"A message id must be 1 to {MAX_ID} characters.")
    return message_id


def _listed_nodes(document: dict) -> dict[str, dict]:
    """Open WebUI's oldest documents: a flat `messages` list, each answering the one before."""
    listed = document.get("messages")
    if not isinstance(listed, list):
        raise _invalid("The chat's 'messages' must be a list.")
    nodes: dict[str, dict] = {}
    previous = None
    for position, raw in enumerate(listed):
        if not isinstance(raw, dict):
            raise _invalid("A message must be an object.")
        message_id = _message_id(raw.get("id") or f"message-{position}")
        nodes[message_id] = {"parentId": previous, **raw, "id": message_id}
        previous = message_id
    return nodes


def _history_nodes(document: dict) -> dict[str, dict] | None:
    history = document.get("history")
    if history is None:
        return None
    if not isinstance(history, dict) or not isinstance(history.get("messages", {}), dict):
        raise _invalid('The chat\'s \'history\' must be {"messages": {id: message}, "currentId"}.')
    return {_message_id(k): v for k, v in (history.get("messages") or {}).items()}


def document_nodes(document: dict[str, Any]) -> list[tuple[str, dict]] | None:
    """The document's messages as (id, dict), parents before their children (in
    childrenIds order); None when the document names none (no history, no list)."""
    nodes = _history_nodes(document)
    if nodes is None:
        if "messages" not in document:
            return None
        nodes = _listed_nodes(document)
    for raw in nodes.values():
        if not isinstance(raw, dict):
            raise _invalid("A message must be an object.")
    return _tree_order(nodes)


def _tree_order(nodes: dict[str, dict]) -> list[tuple[str, dict]]:
    children: dict[str | None, list[str]] = {}
    for message_id, raw in nodes.items():
        parent = raw.get("parentId")
        parent = str(parent) if parent is not None and str(parent) in nodes else None
        children.setdefault(parent, []).append(message_id)
    for message_id, raw in nodes.items():
        named = raw.get("childrenIds")
        listed = [str(c) for c in named if str(c) in nodes] if isinstance(named, list) else []
        mine = children.get(message_id, [])
        # childrenIds order first (Open WebUI's sibling order), then any it forgot.
        children[message_id] = [c for c in listed if c in mine]
        children[message_id] += [c for c in mine if c not in listed]
    ordered, queue = [], list(children.get(None, []))
    while queue:
        message_id = queue.pop(0)
        ordered.append((message_id, nodes[message_id]))
        queue.extend(children.get(message_id, []))
    # Messages in a parent cycle are unreachable from a root: keep them, as roots.
    placed = {message_id for message_id, _ in ordered}
    ordered += [(m, {**r, "parentId": None}) for m, r in nodes.items() if m not in placed]
    return ordered


def current_of(document: dict[str, Any]) -> str | None:
    """The document's history.currentId (or its list's last message)."""
    history = document.get("history")
    if isinstance(history, dict) and history.get("currentId"):
        return str(history["currentId"])
    listed = document.get("messages")
    if isinstance(listed, list) and listed and isinstance(listed[-1], dict):
        return str(listed[-1].get("id") or f"message-{len(listed) - 1}")
    return None
