"""What a plugin's worker makes of a function's stored valves: the valves objects its
hooks would see. The server holds no valves classes, so tests ask the worker's code."""

import tempfile

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError

from functions.models import Function
from functions.services.plugins import plugin_call_for
from functions.workers.worker import InvalidValves, Worker


def _prepared(function: Function, user=None):
    call = plugin_call_for(function=Function.objects.get(pk=function.pk), user=user)
    worker = Worker(None, tempfile.gettempdir())
    message = {
        "function_id": call.function_id,
        "source": call.source,
        "sha256": call.sha256,
        "valves": call.valves,
        "user_valves": call.user_valves,
    }
    try:
        instance, user_valves = worker.prepared(message)
    except InvalidValves as exc:
        raise ValidationError(str(exc), code="invalid_stored_valves") from exc
    finally:
        for loaded in worker.plugins.values():
            loaded.close()
    return call, instance, user_valves


def valves_get_global(*, function: Function):
    """The Valves instance the function's hooks get (None without a Valves class)."""
    call, instance, _ = _prepared(function)
    return instance.valves if call.report.has_valves else None


def valves_get_user(*, user, function: Function):
    """The UserValves instance the function's hooks get for this user."""
    _, _, user_valves = _prepared(function, user or AnonymousUser())
    return user_valves
