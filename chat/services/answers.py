"""The database side of server-owned runs: an answer's message from its start to its
end, and the leases that tell a live run from one whose process died.

A run (chat.services.live) starts its message here (`answer_start`: streaming,
owned by its run manager's control channel, with a lease), saves it as it
streams (`answer_save`, coalesced by the run, which renews the lease), and ends it
(`answer_finish`: done, stopped, error or interrupted). Each run manager renews
its runs' leases (`answers_renew`); a message whose lease ran out belongs to a
process that is gone, and `answers_interrupt_stale` marks it interrupted with what
was saved. Several server processes may share the database: a lease, not a
process list, says who is alive.

Errors: ValidationError "not_an_answer" (the id is a user's message),
"already_running" (a run is writing it), "invalid_message" (a bad id).
Saves and ends answer False/None when the message is gone (its chat deleted) or
another run took it over: the run stops.
"""

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from chat.models import Chat, Message, MessageStatus
from chat.selectors import message_list
from chat.services.chats import locked, refresh_document
from chat.services.history import (
    ANSWER_KEYS,
    MAX_ID,
    clean,
    effective_status,
    filled_keys,
    with_keys,
)

FINAL = (MessageStatus.DONE, MessageStatus.STOPPED, MessageStatus.ERROR)
FINAL += (MessageStatus.INTERRUPTED,)


def _lease(seconds: float) -> datetime:
    return timezone.now() + timedelta(seconds=seconds)


def _answer_row(chat: Chat, message_id: Any) -> tuple[Message | None, dict[str, Message]]:
    if not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_ID:
        raise ValidationError(
            f"The answer's id must be a string of 1 to {MAX_ID} characters.",
            code="invalid_message",
        )
    rows = {m.message_id: m for m in message_list(chat=chat)}
    message = rows.get(message_id)
    if message is not None and message.role not in ("assistant", ""):
        raise ValidationError(
            f"Message {message_id!r} is a {message.role} message, not an answer.",
            code="not_an_answer",
        )
    if message is not None and effective_status(message) == MessageStatus.STREAMING:
        raise ValidationError(
            f"Message {message_id!r} is being answered already.", code="already_running"
        )
    return message, rows


def _parent(
    message: Message | None, rows: dict[str, Message], chat: Chat, parent_id: Any
) -> Message | None:
    if parent_id:
        parent = rows.get(str(parent_id))
    elif message is not None:
        return message.parent
    else:
        parent = rows.get(chat.current_message_id)
    return None if parent is None or parent is message else parent


@transaction.atomic
def answer_start(
    *,
    chat: Chat,
    message_id: Any,
    model: str,
    runner: str,
    lease_seconds: float,
    parent_id: Any = None,
) -> Message:
    """Make `message_id` the chat's answer being written: a new assistant message
    answering `parent_id` (by default the current message), or the empty placeholder
    a client saved, emptied; it becomes the current message."""
    chat = locked(chat)
    message, rows = _answer_row(chat, message_id)
    parent = _parent(message, rows, chat, parent_id)
    message = message or Message(chat=chat, message_id=message_id, created_at=timezone.now())
    message.parent = parent
    message.role, message.model = "assistant", str(model)[:255]
    message.status, message.runner = MessageStatus.STREAMING, runner
    message.lease_expires_at = _lease(lease_seconds)
    message.content, message.events, message.usage, message.error = "", [], None, None
    message.sources, message.files, message.embeds = [], [], []
    message.data = {**with_keys(message.data, ANSWER_KEYS), "content": None}
    message.save()
    chat.current_message_id = message.message_id
    refresh_document(chat)
    return message


def _row_values(message: Message, values: dict[str, Any]) -> dict[str, Any]:
    """The columns to store, and `data` naming the keys they fill."""
    values = clean(values)
    return {**values, "data": with_keys(message.data, filled_keys(values))}


@transaction.atomic
def answer_save(*, pk: int, runner: str, values: dict[str, Any], lease_seconds: float) -> bool:
    """Store what the run has so far and renew its lease; False if the message is gone
    or another run writes it now. One UPDATE (the document's copy waits for the end)."""
    chat_id = Message.objects.filter(pk=pk, runner=runner).values_list("chat_id", flat=True)
    if not chat_id:
        return False
    # The chat locked first, as every writer of its messages does, so a client's change
    # of the message's other keys between the read and the UPDATE below is kept.
    locked(Chat(pk=chat_id[0]))
    message = Message.objects.filter(pk=pk, runner=runner).only("data").first()
    if message is None:
        return False
    updated = Message.objects.filter(pk=pk, runner=runner).update(
        **_row_values(message, values),
        status=MessageStatus.STREAMING,
        lease_expires_at=_lease(lease_seconds),
        updated_at=timezone.now(),
    )
    return updated == 1


@transaction.atomic
def answer_finish(
    *,
    pk: int,
    runner: str,
    status: str,
    values: dict[str, Any],
) -> Message | None:
    """End the answer with its final status and content; None if the message is gone
    or taken over. (A title or tags the run's events named were saved as they came:
    chat.services.chat_names.)"""
    if status not in FINAL:
        raise ValueError(f"{status!r} is not a final status")
    found = Message.objects.filter(pk=pk, runner=runner).select_related("chat").first()
    if found is None:
        return None
    chat = locked(found.chat)
    # Read again under the lock: what clients changed while the run wrote is kept.
    message = Message.objects.filter(pk=pk, runner=runner).first()
    if message is None:
        return None
    for key, value in _row_values(message, values).items():
        setattr(message, key, value)
    message.status, message.lease_expires_at = status, None
    message.save()
    refresh_document(chat)
    return message


def answers_renew(*, runner: str, lease_seconds: float) -> int:
    """Renew the leases of the answers `runner` is writing; return how many."""
    return Message.objects.filter(runner=runner, status=MessageStatus.STREAMING).update(
        lease_expires_at=_lease(lease_seconds)
    )


def answers_interrupt_stale(*, now: datetime | None = None) -> list[Message]:
    """Mark interrupted the streaming answers whose lease ran out (their process is
    gone), keeping what they saved; return them."""
    now = now or timezone.now()
    stale = Q(status=MessageStatus.STREAMING) & (
        Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)
    )
    messages = list(Message.objects.filter(stale).select_related("chat"))
    if not messages:
        return []
    with transaction.atomic():
        Message.objects.filter(stale, pk__in=[m.pk for m in messages]).update(
            status=MessageStatus.INTERRUPTED, lease_expires_at=None
        )
        for chat in {m.chat_id: m.chat for m in messages}.values():
            refresh_document(locked(chat))
    for message in messages:
        message.status = MessageStatus.INTERRUPTED
    return messages
