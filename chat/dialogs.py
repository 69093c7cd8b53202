"""The chat pages' side of plugins' dialogs (chat.services.dialogs): drawing them
(templates/chat/_dialog.html, into the page's #dialogs), and the socket's part,
mixed into chat.consumers.ChatConsumer.

Server to page: the chat's open dialogs when the page joins (the whole #dialogs,
so a reload or a reconnect shows what waits), then `dialog.opened` (appended) and
`dialog.closed` (removed; an expired one is drawn saying so) from the chat's group.
Page to server: `dialog_answer` {dialog_id, answer | cancel | result}, where
`result` is the JSON the sandboxed script's frame posted ({"value"} or {"error"}).
A page also answers `dialog.presence` probes (it is open: a request over the API
may ask it).
"""

import json
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.utils import timezone

from chat.models import Dialog, DialogKind, DialogStatus
from chat.sandbox_execute import execute_frame_url
from chat.services.dialogs import (
    DIALOG_HERE,
    dialog_answer,
    dialog_get_for,
    dialog_public,
    dialogs_pending_for,
)

HEADINGS = {
    DialogKind.INPUT: "Input requested",
    DialogKind.CONFIRMATION: "Please confirm",
    DialogKind.EXECUTE: "Plugin script",
}


@dataclass(frozen=True)
class DialogView:
    """A dialog as a page draws it (dialog_public's fields)."""

    id: str
    kind: str
    title: str = ""
    message: str = ""
    placeholder: str = ""
    value: str = ""
    input_type: str = ""
    status: str = DialogStatus.PENDING
    function_id: str = ""

    @classmethod
    def of(cls, data: dict[str, Any]) -> "DialogView":
        fields = cls.__dataclass_fields__
        return cls(**{key: str(value or "") for key, value in data.items() if key in fields})

    @classmethod
    def of_row(cls, dialog: Dialog) -> "DialogView":
        view = cls.of(dialog_public(dialog))
        if dialog.status == DialogStatus.PENDING and dialog.expires_at <= timezone.now():
            return view.expired_now()
        return view

    def expired_now(self) -> "DialogView":
        return DialogView.of({**self.__dict__, "status": DialogStatus.EXPIRED})

    @property
    def dom_id(self) -> str:
        return f"dialog-{self.id}"

    @property
    def heading(self) -> str:
        return self.title or HEADINGS.get(self.kind, "Question")

    @property
    def expired(self) -> bool:
        return self.status == DialogStatus.EXPIRED

    @property
    def frame_url(self) -> str:
        return execute_frame_url(self.id)


def dialog_fragment(view: DialogView, *, swap: str) -> str:
    return render_to_string("chat/_dialog.html", {"d": view, "swap": swap})


def dialogs_fragment(views: list[DialogView]) -> str:
    return render_to_string("chat/_dialog.html#container", {"dialogs": views})


def dialog_gone_fragment(dialog_id: str) -> str:
    return render_to_string("chat/_dialog.html#gone", {"dom_id": f"dialog-{dialog_id}"})


def _flag(value: Any) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


def _script_answer(text: Any) -> Any:
    """The answer a sandboxed script's frame posted: its value, or {"error": ...}."""
    try:
        result = json.loads(str(text))
    except ValueError:
        raise ValidationError("The script's result is not JSON.") from None
    if not isinstance(result, dict):
        raise ValidationError("The script's result is not an object.")
    if "error" in result:
        return {"error": str(result["error"])}
    return result.get("value")


class DialogSocket:
    """ChatConsumer's dialog handlers (it provides user, chat_id and send)."""

    user: Any
    chat_id: str
    channel_layer: Any

    def _drawn(self) -> dict[str, DialogView]:
        """The dialogs this page shows, by id."""
        if not hasattr(self, "_dialog_views"):
            self._dialog_views: dict[str, DialogView] = {}
        return self._dialog_views

    async def _send_dialogs(self) -> None:
        """Draw the chat's open dialogs (the whole #dialogs: none twice after a reconnect)."""
        pending = await database_sync_to_async(dialogs_pending_for)(
            user=self.user, chat_id=self.chat_id
        )
        drawn = self._drawn()
        drawn.clear()
        drawn.update((dialog.id, DialogView.of_row(dialog)) for dialog in pending)
        await self.send(text_data=dialogs_fragment(list(drawn.values())))

    async def dialog_opened(self, message: dict) -> None:
        # It comes twice (the chat's group and the user's): drawn once.
        dialog_id = str(message.get("dialog_id"))
        if message.get("chat_id") != self.chat_id or dialog_id in self._drawn():
            return
        view = self._drawn()[dialog_id] = DialogView.of(message.get("dialog") or {})
        await self.send(text_data=dialog_fragment(view, swap="append"))

    async def dialog_presence(self, message: dict) -> None:
        """A request over the API asks whether a page of the chat is open: this one is."""
        if message.get("chat_id") == self.chat_id and message.get("reply_to"):
            reply = {"type": DIALOG_HERE, "probe": str(message.get("probe"))}
            await self.channel_layer.send(str(message["reply_to"]), reply)

    async def dialog_closed(self, message: dict) -> None:
        dialog_id = str(message.get("dialog_id"))
        if message.get("chat_id") != self.chat_id:
            return
        view = self._drawn().pop(dialog_id, None)
        if view is None:
            return
        await self._close(view, expired=message.get("status") == DialogStatus.EXPIRED)

    async def _close(self, view: DialogView, *, expired: bool) -> None:
        if expired and view.kind != DialogKind.EXECUTE:
            await self.send(text_data=dialog_fragment(view.expired_now(), swap="replace"))
        else:
            await self.send(text_data=dialog_gone_fragment(view.id))

    async def _dialog_answer(self, content: dict) -> None:
        """The page's answer to one of the chat's dialogs (the first one wins)."""
        dialog_id = str(content.get("dialog_id") or "")
        cancel = _flag(content.get("cancel"))
        answer = _script_answer(content["result"]) if "result" in content else content.get("answer")
        try:
            await database_sync_to_async(dialog_answer)(
                user=self.user,
                dialog_id=dialog_id,
                answer=answer,
                cancel=cancel,
                chat_id=self.chat_id,
            )
        except ValidationError as exc:
            if exc.code != "dialog_closed":
                raise
            await self._closed_already(dialog_id)

    async def _closed_already(self, dialog_id: str) -> None:
        """Too late (answered elsewhere, or its time is up): show it as it now is."""
        dialog = await database_sync_to_async(dialog_get_for)(
            user=self.user, dialog_id=dialog_id, chat_id=self.chat_id
        )
        view = DialogView.of_row(dialog)
        self._drawn().pop(dialog_id, None)
        await self._close(view, expired=view.expired)
