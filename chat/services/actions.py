"""Running an action (a message button): `POST /api/chat/actions/{action_id}`, and
the chat pages' buttons. Every door calls `aprepare_action` (or `prepare_action`),
then `perform_action`: when the body names the caller's chat (`chat_id`) and an
assistant message in it (`id`), the action's events change that message, live on
the chat's pages and saved when it ends (chat.services.message_events). The API door
answers `action_answer(result, req.recorder.events)`: the result and its events."""

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied

from chat.services.message_events import MessageEvents, follow_action
from chat.services.plugin_request import plugin_request_for
from fnplatform import state
from functions.models import FunctionType
from functions.seam import PluginCall
from functions.services.context import CallContext
from functions.services.events import Event, EventRecorder
from functions.services.plugin_contract import html_of
from functions.services.plugins import (
    function_entry,
    model_allowed,
    plugin_call,
    user_dict,
    wiring_for,
)
from functions.services.runtime import HookError, run_action

log = logging.getLogger(__name__)


@dataclass
class ActionRequest:
    call: PluginCall
    sub_id: str | None
    body: dict[str, Any]
    context: CallContext
    recorder: EventRecorder
    # Who runs it: whose chat `chat_id` may name (None: no chat is looked for).
    user: Any = None
    # The message its events change, once perform_action found it (None: none).
    followed: MessageEvents | None = None
    # A chat page's button ran it (perform_page_action): its questions are dialogs that
    # wait for a page; over the API, only a page of the chat that is open is asked.
    from_page: bool = False


def prepare_action(
    *, user, action_id: str, body: dict[str, Any], origin: dict | None = None
) -> ActionRequest:
    """Check the action may run on this model for this user, and load it, from the
    process caches (fnplatform.state; sync: it loads what they lack). `origin` is
    where the request came from, for `__request__`."""
    function_id, _, sub_id = action_id.partition(".")
    entry = function_entry(function_id)
    if entry is None or entry.type != FunctionType.ACTION or not entry.is_active:
        raise ObjectDoesNotExist(f"Action {action_id!r} not found.")
    model_id = str(body.get("model") or "")
    if not user.is_staff:
        if not model_allowed(user=user, model_id=model_id):
            raise PermissionDenied(f"You may not use the model {model_id!r}.")
        if function_id not in wiring_for(model_id).action_ids:
            raise PermissionDenied(f"Action {function_id!r} is not offered on {model_id!r}.")
    call = plugin_call(function_id, user)
    recorder = EventRecorder(function_id=function_id)
    context = CallContext(
        user=user_dict(user),
        event_emitter=recorder.emit,
        event_call=recorder.call,
        metadata={
            "chat_id": body.get("chat_id"),
            "message_id": body.get("id"),
            "session_id": body.get("session_id"),
            "user_id": str(user.pk),
        },
        model={"id": model_id},
        messages=body.get("messages") or [],
        chat_id=body.get("chat_id"),
        session_id=body.get("session_id"),
        message_id=body.get("id"),
        request=plugin_request_for(user=user, origin=origin),
    )
    return ActionRequest(call, sub_id or None, body, context, recorder, user=user)


async def aprepare_action(
    *, user, action_id: str, body: dict[str, Any], origin: dict | None = None
) -> ActionRequest:
    """prepare_action on the event loop: no thread hop when the caches are warm."""
    return await state.answer(
        prepare_action, user=user, action_id=action_id, body=body, origin=origin
    )


async def perform_action(req: ActionRequest) -> Any:
    """Run the action; an HTML return is carried as an embed event plus a status result.

    When the body names one of the caller's chats (`chat_id`) and an assistant message
    in it (`id`), each event (the embed of an HTML return included) changes that
    message as it is emitted, published to the chat's group, and the message is
    saved once when the action ends, even when it failed (chat.services.message_events).
    Otherwise (no such chat or message, or another user's) it runs as ever."""
    req.followed = await follow_action(
        user=req.user,
        body=req.body,
        context=req.context,
        recorder=req.recorder,
        only_if_open=not req.from_page,
    )
    try:
        return await _perform(req)
    except HookError as exc:
        # It failed: what it emitted first goes back with the error.
        exc.keep_events(req.recorder)
        raise
    finally:
        if req.followed is not None:
            await req.followed.save()


_detached: set[asyncio.Task] = set()


async def perform_page_action(req: ActionRequest) -> Any:
    """perform_action for a chat page's button, as a task of the server: a page that
    goes away (closed or reloaded while the action waits for its dialog's answer) does
    not stop it, so its dialog stays open on the chat (asked whether or not a page is
    open) and answering it from any page resumes it."""
    req.from_page = True
    task = asyncio.create_task(perform_action(req), name="chat-action")
    _detached.add(task)
    task.add_done_callback(_detached_done)
    return await asyncio.shield(task)


def _detached_done(task: asyncio.Task) -> None:
    _detached.discard(task)
    if not task.cancelled() and task.exception() is not None:
        # Its caller may be gone: the failure is logged here, and raised to one still there.
        log.info("An action ended with %r", task.exception())


async def _perform(req: ActionRequest) -> Any:
    result = await run_action(req.call, req.body, req.context, sub_id=req.sub_id)
    html = html_of(result)
    if html is None:
        return result
    await req.context.event_emitter({"type": "embeds", "data": {"embeds": [html]}})
    return {"status": True, "embeds": [html]}


def action_answer(result: Any, events: list[Event]) -> dict[str, Any]:
    """What `POST /api/chat/actions/{id}` answers: the action's result and its events.

    A dict result is answered as it is with `events` added, so Open WebUI's frontend,
    which reads the result (and merges its `messages`), reads it as before; anything
    else (None, a string, a list, a dict with an `events` key of its own) comes as
    `{"result": <the result>, "events": [...]}`. Each event is {"type", "data"}, in the
    order emitted, `__event_call__` questions among them."""
    shown = [event.as_dict() for event in events]
    if isinstance(result, dict) and "events" not in result:
        return {**result, "events": shown}
    return {"result": result, "events": shown}
