"""Running an action (a message button): `POST /api/chat/actions/{action_id}`."""

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied

from chat.services.plugin_request import plugin_request_for
from functions.models import Function, FunctionType
from functions.seam import PluginCall
from functions.services.context import CallContext
from functions.services.events import EventRecorder
from functions.services.plugin_contract import html_of
from functions.services.plugins import model_allowed, model_wiring, plugin_call_for, user_dict
from functions.services.runtime import run_action


@dataclass
class ActionRequest:
    call: PluginCall
    sub_id: str | None
    body: dict[str, Any]
    context: CallContext
    recorder: EventRecorder


def prepare_action(
    *, user, action_id: str, body: dict[str, Any], origin: dict | None = None
) -> ActionRequest:
    """Check the action may run on this model for this user, and load it (sync).
    `origin` is where the request came from, for `__request__`."""
    function_id, _, sub_id = action_id.partition(".")
    function = Function.objects.filter(
        pk=function_id, type=FunctionType.ACTION, is_active=True
    ).first()
    if function is None:
        raise ObjectDoesNotExist(f"Action {action_id!r} not found.")
    model_id = str(body.get("model") or "")
    if not user.is_staff:
        if not model_allowed(user=user, model_id=model_id):
            raise PermissionDenied(f"You may not use the model {model_id!r}.")
        if function.id not in {a.id for a in model_wiring(model_id).actions}:
            raise PermissionDenied(f"Action {function.id!r} is not offered on {model_id!r}.")
    recorder = EventRecorder(function_id=function.id)
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
    call = plugin_call_for(function=function, user=user)
    return ActionRequest(call, sub_id or None, body, context, recorder)


async def perform_action(req: ActionRequest) -> Any:
    """Run the action; an HTML return is carried as an embed event plus a status result."""
    result = await run_action(req.call, req.body, req.context, sub_id=req.sub_id)
    html = html_of(result)
    if html is None:
        return result
    await req.context.event_emitter({"type": "embeds", "data": {"embeds": [html]}})
    return {"status": True, "embeds": [html]}
