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
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from chat.markdown import render_markdown, safe_icon_src
from chat.models import Chat, Message, MessageStatus
from chat.selectors import chat_get_for, chat_list_for, message_branch
from chat.services.catalog import Catalog, CatalogModel
from chat.services.history import effective_status
from chat.services.models import action_buttons, toggle_filters, visible_models
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

    @property
    def key(self) -> str:
        return dom_key(self.message_id)

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

    @property
    def html(self) -> str:
        return render_markdown(self.content)

    @property
    def error_text(self) -> str:
        error = self.error or {}
        return str(error.get("content") or error.get("message") or "") if error else ""

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
        )


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


def render_status(view: MessageView) -> str:
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
    view.content = str(state.get("content") or "")
    view.events = list(state.get("events") or [])
    view.error = state.get("error")
    return render_message(view, chat_id=chat.id, oob=True)


def sidebar_entry_fragment(*, user, chat_id: str, active: str) -> str:
    """The sidebar's entry of one of the user's chats ("" if it is gone)."""
    chat = chat_list_for(user=user, include_pinned=True).filter(pk=chat_id).first()
    if chat is None:
        return ""
    context = {"chat": chat, "active": active, "oob": True}
    return render_to_string("chat/_sidebar.html#chat-entry", context)


# One renderer per event type the pages draw live (message view -> fragment). The
# status line is the only one so far; the other types join it here.
EVENT_RENDERERS: dict[str, Callable[[MessageView], str]] = {"status": render_status}
