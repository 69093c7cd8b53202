"""Prepare plugins for a call (sync, ORM at the edge): loaded code plus this call's valves.

The runtime is then handed plain PluginCall objects and never touches the ORM.
"""

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError

from functions.models import Function, FunctionType, ModelSettings
from functions.services import environments, registry
from functions.services.functions import function_record_load_error
from functions.services.health import quarantine_reason
from functions.services.loader import LoadedFunction, SourceError, source_requirements
from functions.services.runtime import PluginCall, prepare_call
from valves.services import user_info, valves_get_global, valves_get_user


class PluginUnavailable(ValidationError):
    """A function's stored code or valves cannot be used right now; says why."""


def loaded_plugin(function: Function) -> LoadedFunction:
    """Return the loaded code of a function, recording (not hiding) a failure to load."""
    if function.environment_id and not environments.ready_here(function.environment_id):
        environments.environment_for(source_requirements(function.content))
        raise PluginUnavailable(
            f"Function {function.id} is not ready: its requirements are being installed "
            "on this server; try again in a minute.",
            code="unavailable",
        )
    try:
        return registry.get_plugin(function)
    except SourceError as exc:
        function_record_load_error(function=function, error=exc.messages[0])
        raise PluginUnavailable(
            f"Function {function.id} cannot be loaded: {exc.messages[0]}", code="unavailable"
        ) from exc


def plugin_call_for(*, function: Function, user=None) -> PluginCall:
    """Return a PluginCall with the function's global valves and this user's user valves."""
    reason = quarantine_reason(function)
    if reason:
        raise PluginUnavailable(reason, code="quarantined")
    loaded = loaded_plugin(function)
    try:
        valves = valves_get_global(function=function) if loaded.valves_class else None
    except ValidationError as exc:
        raise PluginUnavailable(exc.messages[0], code="unavailable") from exc
    user_valves = None
    if loaded.user_valves_class is not None:
        user_valves = valves_get_user(user=user or AnonymousUser(), function=function)
    return prepare_call(
        function.id,
        loaded.instance,
        valves=valves,
        user_valves=user_valves,
        name=function.name,
        source=loaded.source,
        sha256=loaded.sha256,
        environment=function.environment_id,
        timeout=function.call_timeout,
    )


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
