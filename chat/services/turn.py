"""One answer as it is being written: what the chunks and the plugins' events of a
turn make of its message (pure: no I/O).

A run feeds a `Turn` every batch of chunks and every event, in the order they
came; each returns the `Change` its listeners must be told, and `values()` is
what the message row stores. Open WebUI's meaning of each event is kept: a
"message" event adds to the content, "replace" replaces it, "source" adds a
source, "files" sets the files, "embeds" adds (or replaces) embeds,
"chat:message:error" fails the message, "chat:title" and "chat:tags" name the
chat; every other event (status lines, notifications, ...) is kept in `events`.
"""

from dataclasses import dataclass, field
from typing import Any, Literal

from functions.services.events import Event

# Events whose effect is a column of the message: not kept in `events` as well.
FOLDED = frozenset({"message", "replace", "source", "files", "embeds", "chat:message:error"})


@dataclass(frozen=True)
class Change:
    """What listeners are told: text added to the content ("delta"), the whole new
    content ("content"), or an event ({"type", "data"}) to show ("event")."""

    kind: Literal["delta", "content", "event"]
    value: Any


def error_message(frame: dict) -> str:
    """The message of an error frame ({"error": {"message": ...}}) a failed run ends with."""
    error = frame.get("error")
    return str(error.get("message") if isinstance(error, dict) else error)


def is_error_frame(data: dict) -> bool:
    return "error" in data and "choices" not in data


@dataclass
class Turn:
    content: str = ""
    events: list[dict] = field(default_factory=list)
    sources: list = field(default_factory=list)
    files: list = field(default_factory=list)
    embeds: list = field(default_factory=list)
    usage: dict | None = None
    error: dict | None = None
    # The error frame the stream ended with, as the client got it.
    error_frame: dict | None = None
    title: str | None = None
    tags: list | None = None
    # The columns this turn set beyond its content and events: the others keep what
    # was stored (files a plugin added through the Chats shim, say).
    touched: set[str] = field(default_factory=set)

    def take_batch(self, batch: list[dict]) -> str:
        """Take a batch of OpenAI chunk dicts (or the error frame); return the text added."""
        added = []
        for data in batch:
            if is_error_frame(data):
                self.error_frame = data
                self.fail(error_message(data))
                continue
            for choice in data.get("choices") or []:
                text = ((choice or {}).get("delta") or {}).get("content")
                if isinstance(text, str) and text:
                    added.append(text)
            if isinstance(data.get("usage"), dict):
                self.usage = data["usage"]
                self.touched.add("usage")
        text = "".join(added)
        self.content += text
        return text

    def take_event(self, event: Event) -> Change:
        """Take one event a plugin emitted (canonical type); return what to tell listeners."""
        data = event.data if isinstance(event.data, dict) else {}
        if event.type == "message":
            self.content += str(data.get("content", ""))
            return Change("delta", str(data.get("content", "")))
        if event.type == "replace":
            self.content = str(data.get("content", ""))
            return Change("content", self.content)
        self._fold(event, data)
        if event.type not in FOLDED:
            self.events.append(event.as_dict())
        return Change("event", event.as_dict())

    def fail(self, message: str) -> None:
        self.error = {"content": message}
        self.touched.add("error")

    def _fold(self, event: Event, data: dict) -> None:
        if event.type == "source":
            self.sources.append(data)
        elif event.type == "files":
            self.files = list(data.get("files") or [])
        elif event.type == "embeds":
            embeds = list(data.get("embeds") or [])
            self.embeds = embeds if data.get("replace") else [*self.embeds, *embeds]
        elif event.type == "chat:message:error":
            error = data.get("error", event.data)
            self.error = error if isinstance(error, dict) else {"content": str(error)}
        elif event.type == "chat:title" and event.data:
            self.title = str(event.data)[:255]
        elif event.type == "chat:tags" and isinstance(event.data, list):
            self.tags = [str(tag) for tag in event.data]
        column = {"source": "sources", "chat:message:error": "error"}.get(event.type, event.type)
        if column in ("sources", "files", "embeds", "error"):
            self.touched.add(column)

    def values(self) -> dict[str, Any]:
        """The message row's columns this turn fills: its content and events, and the
        other columns it set."""
        values = {"content": self.content, "events": self.events}
        return values | {column: getattr(self, column) for column in self.touched}

    def state(self) -> dict[str, Any]:
        """Everything a listener needs to show the message as it is now."""
        columns = ("content", "events", "sources", "files", "embeds", "usage", "error")
        return {key: getattr(self, key) for key in (*columns, "title", "tags")}
