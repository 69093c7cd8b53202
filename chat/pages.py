"""What the chat pages show, as plain data for their templates: the models a user may
pick, the sidebar's date groups, and each message as it is drawn (from its row, or
from what a live run told the consumer).

Shared by the views (chat.views) and the consumer (chat.consumers), so a message
streamed over the socket and the same message in a reloaded page are drawn by one
template (chat/_message.html) from one shape.
"""

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from chat.event_parts import citations_of, embed_frames, file_links, toast_of, usage_text
from chat.markdown import render_markdown, safe_icon_src
from chat.models import Chat, Message, MessageStatus
from chat.selectors import chat_get_for, chat_list_for, chat_search_for, message_branch
from chat.services.catalog import Catalog, CatalogModel
from chat.services.history import effective_status
from chat.services.models import action_buttons, toggle_filters, visible_models
from chat.services.turn import error_text
from functions.models import Function
from functions.services.plugins import model_wiring

_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def dom_key(message_id: str) -> str:
    """A message id made safe for an HTML id (ids clients chose may hold anything)."""
    text = str(message_id)
    if _PLAIN_ID.fullmatch(text):
        return text
    return "h" + hashlib.sha256(text.encode()).hexdigest()[:32]


# The models a user may pick.


@dataclass
class ModelChoice:
    id: str
    name: str
    description: str
    actions: list[dict] = field(default_factory=list)
    toggles: list[dict] = field(default_factory=list)
    default_filter_ids: list[str] = field(default_factory=list)


def _with_icons(items: list[dict]) -> list[dict]:
    # A plugin's icon is only ever an <img src>, and only a data: image or http(s) URL.
    return [{**item, "icon": safe_icon_src(item.get("icon"))} for item in items]


def _description(model: CatalogModel, descriptions: dict[str, str]) -> str:
    if model.pipe_id:
        return descriptions.get(model.pipe_id, "")
    return f"Upstream model, from {model.owned_by}" if model.owned_by else "Upstream model"


def model_choices(*, user, catalog: Catalog) -> list[ModelChoice]:
    """The catalog's models `user` may use, with what each offers (sync: ORM)."""
    models = visible_models(user=user, catalog=catalog)
    pipe_ids = {m.pipe_id for m in models if m.pipe_id}
    functions = Function.objects.filter(pk__in=pipe_ids).only("id", "meta")
    descriptions = {function.id: function.description for function in functions}
    return [_choice(model, descriptions) for model in models]


def _choice(model: CatalogModel, descriptions: dict[str, str]) -> ModelChoice:
    wiring = model_wiring(model.id)
    return ModelChoice(
        id=model.id,
        name=model.name,
        description=_description(model, descriptions),
        actions=_with_icons(action_buttons(wiring.actions)),
        toggles=_with_icons(toggle_filters(wiring.filters)),
        default_filter_ids=list(wiring.default_filter_ids),
    )


def pick_model(choices: list[ModelChoice], *wanted: str) -> ModelChoice | None:
    """The first of `wanted` the user may use, else their first model (None: none)."""
    by_id = {choice.id: choice for choice in choices}
    for model_id in wanted:
        if model_id and model_id in by_id:
            return by_id[model_id]
    return choices[0] if choices else None


def chat_model_id(chat: Chat) -> str:
    models = (chat.chat or {}).get("models") or []
    return str(models[0]) if models else ""


def chat_filter_ids(chat: Chat) -> list[str]:
    return [str(f) for f in (chat.chat or {}).get("filter_ids") or []]


# The sidebar.


def _group_of(day: date, today: date) -> str:
    if day == today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    if day > today - timedelta(days=7):
        return "Previous 7 days"
    if day > today - timedelta(days=30):
        return "Previous 30 days"
    return day.strftime("%B %Y")


def date_groups(chats, now: datetime | None = None) -> list[tuple[str, list[Chat]]]:
    """The chats (newest first) under Open WebUI's sidebar headings."""
    today = timezone.localdate(now or timezone.now())
    groups: list[tuple[str, list[Chat]]] = []
    for chat in chats:
        label = _group_of(timezone.localdate(chat.updated_at), today)
        if not groups or groups[-1][0] != label:
            groups.append((label, []))
        groups[-1][1].append(chat)
    return groups


# Messages as they are drawn.


@dataclass
class MessageView:
    """One message as chat/_message.html draws it."""

    message_id: str
    role: str
    model: str
    status: str
    content: str = ""
    events: list[dict] = field(default_factory=list)
    error: dict | None = None
    parent_id: str | None = None
    last: bool = False
    actions: list[dict] = field(default_factory=list)
    # What plugins' events added (Message's columns of the same names).
    sources: list = field(default_factory=list)
    files: list = field(default_factory=list)
    embeds: list = field(default_factory=list)
    usage: dict | None = None
    # The chat it is in (its embeds' frames need it; "" draws none).
    chat_id: str = ""

    @property
    def key(self) -> str:
        return dom_key(self.message_id)

    def take(self, columns: dict[str, Any]) -> "MessageView":
        """Take the columns a change gave (Turn.state(), Change.columns)."""
        self.__dict__.pop("citations", None)
        for name in ("content", "events", "sources", "files", "embeds"):
            if name in columns:
                setattr(self, name, _column(columns[name], name))
        for name in ("usage", "error"):
            if name in columns:
                setattr(self, name, columns[name] if isinstance(columns[name], dict) else None)
        return self

    @property
    def streaming(self) -> bool:
        return self.status == MessageStatus.STREAMING

    @property
    def statuses(self) -> list[dict]:
        """The message's status events, oldest first (its collapsible history): each
        {"label", "done", "hidden"}, labelled by its description (or action)."""
        lines = []
        for event in self.events:
            data = event.get("data") if event.get("type") == "status" else None
            if isinstance(data, dict):
                label = str(data.get("description") or data.get("action") or "Working…")
                lines.append(
                    {
                        "label": label,
                        "done": bool(data.get("done")),
                        "hidden": bool(data.get("hidden")),
                    }
                )
        return lines

    @property
    def status_history(self) -> list[dict]:
        """The statuses shown: those not `hidden` (as Open WebUI's history shows them)."""
        return [line for line in self.statuses if not line["hidden"]]

    @property
    def current_status(self) -> dict | None:
        """The status line shown: the newest one that is not hidden."""
        shown = self.status_history
        return shown[-1] if shown else None

    @cached_property
    def citations(self) -> list[dict]:
        """The numbered sources under the answer, each with its anchor's id."""
        citations = citations_of(self.sources)
        for citation in citations:
            citation["anchor"] = f"source-{self.key}-{citation['n']}"
        return citations

    @property
    def html(self) -> str:
        links = [(f"#{c['anchor']}", f"Source {c['n']}: {c['name']}") for c in self.citations]
        return render_markdown(self.content, links)

    @property
    def file_links(self) -> list[dict]:
        return file_links(self.files)

    @property
    def embed_frames(self) -> list[dict]:
        return embed_frames(
            self.embeds, chat_id=self.chat_id, message_id=self.message_id, key=self.key
        )

    @property
    def usage_text(self) -> str:
        return usage_text(self.usage)

    @property
    def error_text(self) -> str:
        return error_text(self.error) if self.error else ""

    @classmethod
    def of(cls, message: Message, *, now: datetime | None = None) -> "MessageView":
        return cls(
            message_id=message.message_id,
            role=message.role or "user",
            model=message.model,
            status=effective_status(message, now),
            content=message.content,
            events=list(message.events or []),
            error=message.error,
            parent_id=message.parent.message_id if message.parent_id else None,
            sources=_column(message.sources, "sources"),
            files=_column(message.files, "files"),
            embeds=_column(message.embeds, "embeds"),
            usage=message.usage if isinstance(message.usage, dict) else None,
            chat_id=message.chat_id,
        )


def _column(value: Any, name: str) -> Any:
    if name == "content":
        return str(value or "")
    return list(value) if isinstance(value, list) else []


def thread_views(messages: list[Message], actions: list[dict]) -> list[MessageView]:
    """The branch's messages to draw; the last of them may be regenerated or edited
    (once no answer is being written)."""
    views = [MessageView.of(message) for message in messages]
    for view in views:
        view.actions = actions if view.role == "assistant" else []
    if any(view.streaming for view in views):
        return views
    last_user = next((v for v in reversed(views) if v.role == "user"), None)
    for view in (views[-1] if views else None, last_user):
        if view is not None:
            view.last = True
    return views


def render_message(view: MessageView, *, chat_id: str, oob: bool = False) -> str:
    """One message's HTML (outerHTML-swapped over the socket when `oob`)."""
    return render_to_string(
        "chat/_message.html", {"m": view, "chat_id": chat_id, "oob": oob}
    ).strip()


def render_status(view: MessageView, event: dict | None = None) -> str:
    """A message's status line and history, swapped in place over the socket."""
    return render_to_string("chat/_status.html", {"m": view, "oob": True}).strip()


def model_actions(model_id: str) -> list[dict]:
    """The action buttons a model's answers carry (sync: ORM)."""
    return _with_icons(action_buttons(model_wiring(model_id).actions)) if model_id else []


def thread_fragment(*, user, chat_id: str, busy: bool) -> str:
    """The chat's conversation and its composer's buttons, swapped in over the socket
    when an answer starts or ends (sync: ORM)."""
    chat = chat_get_for(user=user, id=chat_id)
    thread = thread_views(message_branch(chat=chat), model_actions(chat_model_id(chat)))
    context = {"chat": chat, "thread": thread, "busy": busy, "oob": True}
    return render_to_string("chat/chat.html#thread", context) + render_to_string(
        "chat/chat.html#composer-controls", context
    )


def message_fragment(*, user, chat_id: str, message_id: str, state: dict[str, Any]) -> str:
    """One message of the chat drawn from `state` (what a change made of it, before it
    is saved), swapped in place over the socket ("" if the page does not show it)."""
    chat = chat_get_for(user=user, id=chat_id)
    thread = thread_views(message_branch(chat=chat), model_actions(chat_model_id(chat)))
    view = next((v for v in thread if v.message_id == message_id), None)
    if view is None:
        return ""
    view.take({"content": "", "events": [], "error": None} | state)
    return render_message(view, chat_id=chat.id, oob=True)


def sidebar_entry_fragment(*, user, chat_id: str, active: str) -> str:
    """The sidebar's entry of one of the user's chats ("" if it is gone)."""
    chat = chat_list_for(user=user, include_pinned=True).filter(pk=chat_id).first()
    if chat is None:
        return ""
    context = {"chat": chat, "active": active, "oob": True}
    return render_to_string("chat/_sidebar.html#chat-entry", context)


def sidebar_context(user, *, query: str = "", active: str = "") -> dict[str, Any]:
    """What the chat list draws: the user's chats (matching `query`), by date."""
    return {
        "groups": date_groups(chat_search_for(user=user, query=query)),
        "q": query,
        "active": active,
    }


def chat_list_fragment(*, user, active: str) -> str:
    """The whole chat list, swapped in by id (a chat made or deleted in another tab)."""
    context = sidebar_context(user, active=active) | {"list_oob": True}
    return render_to_string("chat/_sidebar.html#chat-list", context)


def chat_named_fragment(*, user, chat_id: str, active: str) -> str:
    """What a page redraws when a plugin named a chat (chat.named): its entry in the
    chat list and, when it is the page's own chat, the heading ("" if it is gone)."""
    entry = sidebar_entry_fragment(user=user, chat_id=chat_id, active=active)
    if not entry or chat_id != active:
        return entry
    chat = chat_get_for(user=user, id=chat_id)
    return entry + render_to_string("chat/chat.html#chat-title", {"chat": chat, "oob": True})


# Plugins' events, drawn live: one renderer per type a run's `run.event` carries
# (chat.consumers.run_event), given the message as the page has it now (the event's
# columns taken) and the event; each answers the fragments it changes, swapped in by
# id. "message" and "replace" come as run.delta and run.content instead, and draw the
# answer's text; a type with no renderer (one nobody knows, say) is kept in the
# message's events and draws nothing.


def _part(name: str) -> Callable[[MessageView, dict | None], str]:
    def render(view: MessageView, event: dict | None = None) -> str:
        return render_to_string(f"chat/_message.html#{name}", {"m": view, "oob": True}).strip()

    render.__name__ = f"render_{name}"
    return render


render_sources = _part("sources")
render_files = _part("files")
render_embeds = _part("embeds")
render_error = _part("error")


def render_completion(view: MessageView, event: dict | None = None) -> str:
    """chat:completion: its sources and error (its content is drawn as run.content is)."""
    return render_sources(view) + render_error(view)


def render_toast(view: MessageView | None, event: dict | None = None) -> str:
    """A notification: a toast appended to the page's toasts (errors to its alerts)."""
    toast = toast_of(event)
    return render_to_string("chat/_toast.html", {"toast": toast}).strip() if toast else ""


def render_chat_named(view: MessageView, event: dict | None = None) -> str:
    """chat:title, chat:tags: nothing in the message; the chat is saved named and every
    page of its owner redraws it from there (chat.named, chat_named_fragment)."""
    return ""


EVENT_RENDERERS: dict[str, Callable[[MessageView, dict | None], str]] = {
    "status": render_status,
    "source": render_sources,
    "files": render_files,
    "embeds": render_embeds,
    "chat:message:error": render_error,
    "error": render_error,
    "chat:completion": render_completion,
    "notification": render_toast,
    "chat:title": render_chat_named,
    "chat:tags": render_chat_named,
}
# Events drawn outside their message, and never stored: an action's (message.updated)
# draw them too.
LIVE_RENDERERS = {"notification": render_toast}
