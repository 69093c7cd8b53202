"""The chat pages' side of plugins' dialogs (chat.services.dialogs): drawing them
(templates/chat/_dialog.html, into the page's #dialogs), and the socket's part,
mixed into chat.consumers.ChatConsumer.

Server to page: the chat's open dialogs when the page joins (the whole #dialogs,
so a reload or a reconnect shows what waits), then `dialog.opened` (appended) and
`dialog.closed` (removed; an expired one is drawn saying so) from the chat's group.
An "execute" script runs in one page only (dialog_claim, by the page's tab id in the
socket's URL, which a reconnect keeps and a reload renews): that page gets its
sandboxed frame in #scripts, which a redraw of #dialogs leaves running; the others
a note in #dialogs that another page runs it. A page whose socket closes (the tab
closed or went elsewhere) lets go of its scripts, and the chat's other pages are
offered them again.
Page to server: `dialog_answer` {dialog_id, answer | cancel | result}, where
`result` is the JSON the sandboxed script's frame posted ({"value"} or {"error"}).
A page also answers `dialog.presence` probes (it is open: a request over the API
may ask it).
"""

import json
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.utils import timezone

from chat.models import Dialog, DialogKind, DialogStatus, new_id
from chat.sandbox_execute import execute_frame_url
from chat.services.dialogs import (
    CLAIMED,
    CLOSED,
    DIALOG_HERE,
    ELSEWHERE,
    dialog_answer,
    dialog_claim,
    dialog_get_for,
    dialog_public,
    dialogs_offer,
    dialogs_pending_for,
    dialogs_release,
)

# A page's tab id, as chat.views makes them.
TAB_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
# Close codes of a page that went away (closed, reloaded, left): 1000 normal, 1001
# going away. A dropped connection (1006) or a server restarting is not the page
# leaving: it reconnects, and runs its script on.
PAGE_CLOSED = frozenset({1000, 1001})

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
    # An "execute" script another of the user's pages runs (this one shows a note).
    elsewhere: str = ""

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


def dialogs_fragment(views: list[DialogView], running: list[str]) -> str:
    """All of #dialogs, naming the scripts this page runs (the page drops other frames)."""
    context = {"dialogs": views, "running": " ".join(running)}
    return render_to_string("chat/_dialog.html#container", context)


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

    @property
    def tab(self) -> str:
        """The page's id (its socket URL's `tab`): a reconnect keeps it, a reload not."""
        if not hasattr(self, "_tab"):
            query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
            tab = (query.get("tab") or [""])[0]
            self._tab = tab if TAB_ID.fullmatch(tab) else new_id()
        return self._tab

    async def _claim(self, view: DialogView) -> str:
        return await database_sync_to_async(dialog_claim)(
            user=self.user, dialog_id=view.id, tab=self.tab
        )

    async def _send_dialogs(self) -> None:
        """Draw the chat's open dialogs (the whole #dialogs: none twice after a
        reconnect); the "execute" scripts nobody runs yet start in this page."""
        pending = await database_sync_to_async(dialogs_pending_for)(
            user=self.user, chat_id=self.chat_id
        )
        drawn = self._drawn()
        drawn.clear()
        start, running = [], []
        for dialog in pending:
            view = DialogView.of_row(dialog)
            if view.kind == DialogKind.EXECUTE:
                claim = CLOSED if view.expired else await self._claim(view)
                if claim == CLOSED:
                    continue  # it ended meanwhile
                if claim == ELSEWHERE:
                    view = replace(view, elsewhere="true")
                else:
                    running.append(view.id)
                    if claim == CLAIMED:  # MINE: its frame runs on in #scripts
                        start.append(view)
            drawn[view.id] = view
        notes = [view for view in drawn.values() if view.id not in running]
        await self.send(text_data=dialogs_fragment(notes, running))
        for view in start:
            await self.send(text_data=dialog_fragment(view, swap="append"))

    async def dialog_opened(self, message: dict) -> None:
        # It comes twice (the chat's group and the user's): drawn once. An execute
        # script comes again when the page running it closed: claimed here, if it can.
        dialog_id = str(message.get("dialog_id"))
        if message.get("chat_id") != self.chat_id:
            return
        drawn = self._drawn().get(dialog_id)
        if drawn is not None and not drawn.elsewhere:
            return
        view = DialogView.of(message.get("dialog") or {})
        if view.kind == DialogKind.EXECUTE:
            await self._offered(view, drawn)
            return
        self._drawn()[dialog_id] = view
        await self.send(text_data=dialog_fragment(view, swap="append"))

    async def _offered(self, view: DialogView, note: DialogView | None) -> None:
        """An "execute" script waits for a page: run it here if no other page does."""
        claim = await self._claim(view)
        if claim == ELSEWHERE and note is None:
            view = self._drawn()[view.id] = replace(view, elsewhere="true")
            await self.send(text_data=dialog_fragment(view, swap="append"))
        elif claim == CLAIMED:
            if note is not None:  # the note goes, the frame comes (same id)
                await self.send(text_data=dialog_gone_fragment(view.id))
            self._drawn()[view.id] = view
            await self.send(text_data=dialog_fragment(view, swap="append"))

    async def _release_scripts(self, code: int) -> None:
        """The page closed (not a dropped connection, which it retries with the same
        tab id): its unfinished scripts go to the chat's other pages."""
        if code not in PAGE_CLOSED or not self.chat_id:
            return
        released = await database_sync_to_async(dialogs_release)(
            user=self.user, chat_id=self.chat_id, tab=self.tab
        )
        await dialogs_offer(released)

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
