"""One answer as it is being written: what the chunks and the plugins' events of a
turn make of its message (pure: no I/O).

A run feeds a `Turn` every batch of chunks and every event, in the order they
came; each returns the `Change` its listeners must be told, and `values()` is
what the message row stores. Open WebUI's meaning of each event is kept: a
"message" event adds to the content, "replace" replaces it, "source" adds a
source, "files" sets the files, "embeds" adds (or replaces) embeds,
"chat:message:error" (and "error") fails the message, "chat:completion" does what
Open WebUI's response handler does with it (its content replaces the answer's, its
usage is kept, its sources added, its error fails the message), "chat:title" and
"chat:tags" name the chat. A notification is shown, never stored (Open WebUI keeps
none); every other event (status lines, the chat's names, types nobody knows, ...)
is kept in `events`.
"""

from dataclasses import dataclass, field
from typing import Any, Literal

from functions.services.events import Event

# Events whose effect is a column of the message: not kept in `events` as well.
FOLDED = frozenset(
    {
        "message",
        "replace",
        "source",
        "files",
        "embeds",
        "chat:message:error",
        "error",
        "chat:completion",
    }
)
# Events shown as they come and never stored (Open WebUI persists no notification).
LIVE_ONLY = frozenset({"notification"})
MAX_TITLE = 255
MAX_TAGS, MAX_TAG = 20, 64


@dataclass(frozen=True)
class Change:
    """What listeners are told: text added to the content ("delta"), the whole new
    content ("content"), or an event ({"type", "data"}) to show ("event"), with the
    message's columns it changed and their new values (`columns`: "sources",
    "files", "embeds", "usage", "error", and "content" when a chat:completion
    replaced it)."""

    kind: Literal["delta", "content", "event"]
    value: Any
    columns: dict[str, Any] = field(default_factory=dict)


def error_message(frame: dict) -> str:
    """The message of an error frame ({"error": {"message": ...}}) a failed run ends with."""
    error = frame.get("error")
    return str(error.get("message") if isinstance(error, dict) else error)


def is_error_frame(data: dict) -> bool:
    return "error" in data and "choices" not in data


def title_of(data: Any) -> str | None:
    """The chat title a chat:title event names (a string, or {"title": ...}); None if
    it names none."""
    if isinstance(data, dict):
        data = data.get("title")
    if not isinstance(data, str | int | float) or isinstance(data, bool):
        return None
    title = " ".join(str(data).split())[:MAX_TITLE]
    return title or None


def tags_of(data: Any) -> list[str] | None:
    """The tags a chat:tags event names (a list of strings or of {"name": ...}, or
    {"tags": [...]}), trimmed and without repeats; None if it names no list."""
    if isinstance(data, dict):
        data = data.get("tags")
    if not isinstance(data, list):
        return None
    names = (tag.get("name") if isinstance(tag, dict) else tag for tag in data)
    clean = (" ".join(name.split())[:MAX_TAG] for name in names if isinstance(name, str))
    return list(dict.fromkeys(tag for tag in clean if tag))[:MAX_TAGS]


def error_text(data: Any) -> str:
    """What an error event ("error", "chat:message:error", chat:completion's `error`)
    says: its `error` ({"content"} or {"message"}, or a string), `content`,
    `description` or `message`, or the data itself when it is a string."""
    if isinstance(data, dict):
        for key in ("error", "content", "description", "message", "detail"):
            value = data.get(key)
            if isinstance(value, dict):
                return error_text(value)
            if value:
                return str(value)
        return ""
    return "" if data is None else str(data)


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
        changed = self._fold(event, data)
        self.touched.update(changed - {"content"})
        if event.type not in FOLDED | LIVE_ONLY:
            self.events.append(event.as_dict())
        columns = {column: getattr(self, column) for column in sorted(changed)}
        return Change("event", event.as_dict(), columns)

    def fail(self, message: str) -> None:
        self.error = {"content": message}
        self.touched.add("error")

    def _fold(self, event: Event, data: dict) -> set[str]:
        """Apply the event to the columns; return the names of those it changed."""
        if event.type == "source":
            self.sources.append(data)
            return {"sources"}
        if event.type == "files":
            self.files = list(data.get("files") or [])
            return {"files"}
        if event.type == "embeds":
            embeds = list(data.get("embeds") or [])
            self.embeds = embeds if data.get("replace") else [*self.embeds, *embeds]
            return {"embeds"}
        if event.type == "chat:message:error":
            error = data.get("error", event.data)
            self.error = error if isinstance(error, dict) else {"content": str(error)}
            return {"error"}
        if event.type == "error":
            self.error = {"content": error_text(event.data) or "The answer failed."}
            return {"error"}
        if event.type == "chat:completion":
            return self._completion(data)
        if event.type == "chat:title":
            self.title = title_of(event.data) or self.title
        elif event.type == "chat:tags":
            tags = tags_of(event.data)
            self.tags = self.tags if tags is None else tags
        return set()

    def _completion(self, data: dict) -> set[str]:
        """A chat:completion event, as Open WebUI's response handler takes it: content
        replaces the answer's (choices' deltas add to it), usage is kept, sources are
        added, an error fails the message, a title names the chat."""
        changed = set()
        if isinstance(data.get("content"), str) and data["content"]:
            self.content, changed = data["content"], {"content"}
        for choice in data.get("choices") or []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            text = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(text, str) and text:
                self.content += text
                changed.add("content")
        if isinstance(data.get("usage"), dict):
            self.usage = data["usage"]
            changed.add("usage")
        sources = [s for s in data.get("sources") or [] if isinstance(s, dict)]
        if sources:
            self.sources.extend(sources)
            changed.add("sources")
        if data.get("error"):
            self.error = {"content": error_text(data["error"]) or "The answer failed."}
            changed.add("error")
        self.title = title_of(data.get("title")) or self.title
        return changed

    def values(self) -> dict[str, Any]:
        """The message row's columns this turn fills: its content and events, and the
        other columns it set."""
        values = {"content": self.content, "events": self.events}
        return values | {column: getattr(self, column) for column in self.touched}

    def state(self) -> dict[str, Any]:
        """Everything a listener needs to show the message as it is now."""
        columns = ("content", "events", "sources", "files", "embeds", "usage", "error")
        return {key: getattr(self, key) for key in (*columns, "title", "tags")}
