"""Prepare plugins for a call (sync, ORM at the edge): the load report plus this call's
valves, as data.

The server never loads plugin code: it reads the report the sandboxed save-time check
stored on the function's revision. The runtime is then handed plain PluginCall
objects and never touches the ORM.
"""

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError

from functions.models import Function, FunctionType, ModelSettings
from functions.seam import PluginCall
from functions.services.loader import LoadReport
from functions.services.reports import PluginUnavailable, function_report, plugin_target
from valves.services import user_info, valves_explicit_global, valves_explicit_user

__all__ = ["PluginUnavailable", "plugin_call_for"]


def plugin_call_for(*, function: Function, user=None) -> PluginCall:
    """Return a PluginCall with the function's global valves and this user's user valves.
    Raise PluginUnavailable for a quarantined function, or one not ready here."""
    report = function_report(function)
    try:
        valves = valves_explicit_global(function=function) if report.has_valves else None
    except ValidationError as exc:
        raise PluginUnavailable(exc.messages[0], code="unavailable") from exc
    user_valves = None
    if report.has_user_valves:
        user_valves = valves_explicit_user(user=user or AnonymousUser(), function=function)
    return plugin_target(
        function,
        report,
        runnable=True,
        valves=valves,
        user_valves=user_valves,
        priority=_priority(valves, report),
    )


def _priority(valves: dict | None, report: LoadReport) -> int:
    value = (valves or {}).get("priority", report.priority)
    try:
        return int(value)
    except (TypeError, ValueError):
        return report.priority


def user_dict(user) -> dict:
    """Return the __user__ dict plugins receive (without valves, added per plugin)."""
    return user_info(user) or {"id": "", "email": "", "name": "anonymous", "role": "user"}


@dataclass
class ModelWiring:
    """Which filters and actions apply to a model, and its toggles switched on by default."""

    filters: list[Function]
    actions: list[Function]
    default_filter_ids: list[str]


def model_settings_for(model_id: str) -> ModelSettings | None:
    return (
        ModelSettings.objects.filter(model_id=model_id)
        .prefetch_related("filters", "actions", "allowed_users", "allowed_groups")
        .first()
    )


def model_wiring(model_id: str) -> ModelWiring:
    """Return active global filters and actions plus those attached to this model."""
    settings = model_settings_for(model_id)
    attached_filters = {f.id for f in settings.filters.all()} if settings else set()
    attached_actions = {a.id for a in settings.actions.all()} if settings else set()
    active = list(Function.objects.filter(is_active=True, type__in=["filter", "action"]))
    return ModelWiring(
        filters=[
            f
            for f in active
            if f.type == FunctionType.FILTER and (f.is_global or f.id in attached_filters)
        ],
        actions=[
            a
            for a in active
            if a.type == FunctionType.ACTION and (a.is_global or a.id in attached_actions)
        ],
        default_filter_ids=list(settings.default_filter_ids) if settings else [],
    )


def model_allowed(*, user, model_id: str, settings: ModelSettings | None = None) -> bool:
    """Whether a user may use a model: staff always; else everyone unless restricted."""
    if user is None or not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    settings = settings if settings is not None else model_settings_for(model_id)
    if settings is None:
        return True
    users = {u.pk for u in settings.allowed_users.all()}
    groups = {g.pk for g in settings.allowed_groups.all()}
    if not users and not groups:
        return True
    return user.pk in users or user.groups.filter(pk__in=groups).exists()
