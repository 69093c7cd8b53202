"""Events plugins send through `__event_emitter__` and `__event_call__`.

Every type of the contract (§7) is validated against a typed schema; extra keys
are kept, as Open WebUI's UI ignores what it does not know. Aliases are mapped
to one canonical type so storage and rendering need one branch per meaning.
Unknown types pass through unchanged and are logged.

With no live chat session (a plain API call) the emitter records events and the
caller answers at once with an error result instead of waiting for a browser
that will never reply.
"""

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

log = logging.getLogger(__name__)


class _Data(BaseModel):
    model_config = ConfigDict(extra="allow")


class StatusData(_Data):
    description: str = ""
    done: bool | None = None
    hidden: bool | None = None


class ContentData(_Data):
    content: str


class FilesData(_Data):
    files: list[Any]


class EmbedsData(_Data):
    embeds: list[Any]
    replace: bool | None = None


class SourceData(_Data):
    source: dict[str, Any] | None = None
    document: list[Any] | None = None
    metadata: list[Any] | None = None


class NotificationData(_Data):
    type: Literal["info", "success", "warning", "error"] = "info"
    content: str


class DialogData(_Data):
    title: str | None = None
    message: str | None = None


class ExecuteData(_Data):
    code: str


class ErrorData(_Data):
    error: dict[str, Any] | str


CANONICAL = {
    "chat:message:delta": "message",
    "chat:message": "replace",
    "chat:message:files": "files",
    "chat:message:embeds": "embeds",
    "citation": "source",
}
SCHEMAS: dict[str, type[BaseModel]] = {
    "status": StatusData,
    "message": ContentData,
    "replace": ContentData,
    "files": FilesData,
    "embeds": EmbedsData,
    "source": SourceData,
    "notification": NotificationData,
    "confirmation": DialogData,
    "input": DialogData,
    "execute": ExecuteData,
    "chat:message:error": ErrorData,
}
# Known types whose data is free-form (a string, a control dict, …).
FREE_FORM = frozenset(
    {
        # Plugins send an error of their own as {"type": "error", "data": {...}}.
        "error",
        "chat:title",
        "chat:tags",
        "chat:message:favorite",
        "chat:message:follow_ups",
        "chat:message:tasks",
        "chat:completion",
        "chat:outlet",
        "chat:tasks:cancel",
        "chat:active",
        "chat:reload",
        "chat:list",
        "context_compaction",
    }
)


class EventError(ValueError):
    """A plugin sent an event that does not fit its type's schema."""


@dataclass
class Event:
    type: str
    data: Any
    known: bool = True
    original_type: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "data": self.data}


def parse_event(raw: Any) -> Event:
    """Validate a plugin's {"type", "data"} dict and return it with its canonical type."""
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise EventError(f"An event must be a dict with a string 'type', got {raw!r:.100}")
    original = raw["type"]
    kind = CANONICAL.get(original, original)
    data = raw.get("data", {})
    schema = SCHEMAS.get(kind)
    if schema is not None:
        try:
            data = schema.model_validate(data if data is not None else {}).model_dump()
        except ValidationError as exc:
            raise EventError(f"Invalid {original!r} event: {_first_error(exc)}") from exc
        return Event(kind, data, True, original)
    known = kind in FREE_FORM or kind.startswith("terminal:")
    if not known:
        # Open WebUI's page logs "Unknown message type" and shows nothing; so do we,
        # once, here, where every door's events pass (a run keeps it in the message).
        log.info("An event of unknown type %r: kept, not shown", original)
    return Event(kind, data, known, original)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "data"
    return f"{where}: {error['msg']}"


NO_SESSION = {
    "error": "No interactive session: this call has no browser to answer it "
    "(it came through the API, not a chat page)."
}


@dataclass
class EventRecorder:
    """Emitter and caller for calls without a live session: events are kept, calls answered."""

    function_id: str = ""
    events: list[Event] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    async def emit(self, raw: dict) -> None:
        try:
            self.events.append(parse_event(raw))
        except EventError as exc:
            # A malformed event must not kill the answer; it is reported instead.
            log.warning("Function %s sent a bad event: %s", self.function_id or "?", exc)
            self.rejected.append(str(exc))

    async def call(self, raw: dict) -> dict:
        await self.emit(raw)
        return dict(NO_SESSION)
