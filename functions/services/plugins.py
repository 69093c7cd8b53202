"""Prepare plugins for a call (sync, ORM at the edge): the load report plus this call's
valves, as data.

The server never loads plugin code: it reads the report the sandboxed save-time check
stored on the function's revision. The runtime is then handed plain PluginCall
objects and never touches the ORM.

What a request reads here is cached per database generation (fnplatform.state), as
plain data: each function as a `FunctionEntry` (its PluginCall with global valves, or
why it cannot run), the active filters and actions, every model's settings, each
user's groups. The cached lookups (`function_entry`, `plugin_call`, `wiring_for`,
`model_allowed`) answer on the event loop from memory, and raise state.Miss there
when something must be loaded first (`state.answer` then runs them in a thread).
"""

from dataclasses import dataclass, field, replace

from django.contrib.auth.models import AnonymousUser, Group
from django.core.exceptions import ValidationError

from fnplatform import state
from functions.models import Function, FunctionType, ModelSettings
from functions.seam import PluginCall
from functions.services.loader import LoadReport
from functions.services.reports import (
    PluginUnavailable,
    function_report,
    plugin_target,
    refuse_quarantined,
    require_environment_here,
    require_runnable,
)
from valves.services import (
    user_info,
    user_valves_of,
    valves_explicit_global,
    valves_explicit_user,
)

__all__ = ["PluginUnavailable", "plugin_call", "plugin_call_for"]


def plugin_call_for(*, function: Function, user=None) -> PluginCall:
    """Return a PluginCall with the function's global valves and this user's user valves.
    Raise PluginUnavailable for a quarantined function, or one not ready here.

    The report is the given instance's; valves, user valves and the quarantine come from
    the caches. `plugin_call(function_id, user)` is the form that needs no instance."""
    with state.scope():
        call = _global_call(function)
        user_valves = None
        if call.report.has_user_valves:
            user_valves = valves_explicit_user(user=user or AnonymousUser(), function=function)
    return replace(call, user_valves=user_valves) if user_valves is not None else call


def _global_call(function: Function, *, here: bool = True) -> PluginCall:
    """The function's PluginCall with its global valves (no user's). Refuse a quarantined
    function, and with `here` one whose environment this host lacks."""
    report = function_report(function)
    try:
        valves = valves_explicit_global(function=function) if report.has_valves else None
    except ValidationError as exc:
        raise PluginUnavailable(exc.messages[0], code="unavailable") from exc
    if here:
        require_runnable(function)
    else:
        refuse_quarantined(function)
    return plugin_target(function, report, valves=valves, priority=_priority(valves, report))


def _priority(valves: dict | None, report: LoadReport) -> int:
    value = (valves or {}).get("priority", report.priority)
    try:
        return int(value)
    except (TypeError, ValueError):
        return report.priority


def user_dict(user) -> dict:
    """Return the __user__ dict plugins receive (without valves, added per plugin)."""
    return user_info(user) or {"id": "", "email": "", "name": "anonymous", "role": "user"}


# Functions as a request sees them (cached)


@dataclass(frozen=True)
class FunctionEntry:
    """A function as plain data: its row's fields a request needs, and its PluginCall
    with global valves (no user's), or why it cannot run (`unavailable`: message, code)."""

    id: str
    name: str
    type: str
    is_active: bool
    is_global: bool
    created: int
    load_result: dict = field(repr=False)
    call: PluginCall | None = field(default=None, repr=False)  # holds decrypted valves
    unavailable: tuple[str, str] | None = None

    @property
    def toggle(self) -> bool:
        return bool(self.load_result.get("toggle"))

    @property
    def has_user_valves(self) -> bool:
        return bool(self.load_result.get("has_user_valves"))

    def runnable(self) -> PluginCall:
        """Its PluginCall (shared: read-only); PluginUnavailable when it cannot run."""
        if self.call is None:
            message, code = self.unavailable or (f"Function {self.id} is unavailable.", "")
            raise PluginUnavailable(message, code=code or "unavailable")
        call = self.call
        require_environment_here(call.function_id, call.environment, call.source)
        return call


def function_entry(function_id: str) -> FunctionEntry | None:
    """The function with this id, None when there is none (cached per generation)."""
    return state.cached("function", function_id, lambda: _load_entry(function_id))


def _load_entry(function_id: str) -> FunctionEntry | None:
    function = Function.objects.select_related("current_revision").filter(pk=function_id).first()
    if function is None:
        return None
    revision = function.current_revision
    entry = FunctionEntry(
        id=function.id,
        name=function.name,
        type=function.type,
        is_active=function.is_active,
        is_global=function.is_global,
        created=int(function.created_at.timestamp()),
        load_result=dict(revision.load_result or {}) if revision is not None else {},
    )
    try:
        # Its environment is checked at each use instead: an install moves no generation.
        return replace(entry, call=_global_call(function, here=False))
    except PluginUnavailable as exc:
        return replace(entry, unavailable=(exc.messages[0], exc.code or "unavailable"))


def plugin_call(function_id: str, user=None) -> PluginCall:
    """plugin_call_for by id, from the caches: the function's PluginCall with this user's
    own user valves. Raise Function.DoesNotExist, or PluginUnavailable. The call may be
    shared with other requests (when it has no user valves): treat it as read-only."""
    entry = function_entry(function_id)
    if entry is None:
        raise Function.DoesNotExist(f"Function {function_id!r} not found.")
    call = entry.runnable()
    if not call.report.has_user_valves:
        return call
    mine = {}
    if user is not None and user.is_authenticated:
        mine = user_valves_of(user.pk).get(function_id, {})
    return replace(call, user_valves=dict(mine))


# Model wiring and access (cached)


@dataclass
class ModelWiring:
    """Which filters and actions apply to a model, and its toggles switched on by default."""

    filters: list[Function]
    actions: list[Function]
    default_filter_ids: list[str]


@dataclass(frozen=True)
class Wiring:
    """ModelWiring as ids: the model's filters and actions, in their order."""

    filter_ids: tuple[str, ...]
    action_ids: tuple[str, ...]
    default_filter_ids: tuple[str, ...]


@dataclass(frozen=True)
class _Settings:
    """A ModelSettings row as plain data."""

    filter_ids: frozenset[str]
    action_ids: frozenset[str]
    default_filter_ids: tuple[str, ...]
    user_ids: frozenset[int]
    group_ids: frozenset[int]


def model_settings_for(model_id: str) -> ModelSettings | None:
    return (
        ModelSettings.objects.filter(model_id=model_id)
        .prefetch_related("filters", "actions", "allowed_users", "allowed_groups")
        .first()
    )


def _all_settings() -> dict[str, _Settings]:
    """Every model's settings, by model id (cached per generation)."""
    return state.cached("model_settings", None, _load_settings)


def _load_settings() -> dict[str, _Settings]:
    rows = ModelSettings.objects.prefetch_related(
        "filters", "actions", "allowed_users", "allowed_groups"
    )
    return {
        row.model_id: _Settings(
            filter_ids=frozenset(f.id for f in row.filters.all()),
            action_ids=frozenset(a.id for a in row.actions.all()),
            default_filter_ids=tuple(row.default_filter_ids or ()),
            user_ids=frozenset(u.pk for u in row.allowed_users.all()),
            group_ids=frozenset(g.pk for g in row.allowed_groups.all()),
        )
        for row in rows
    }


def _active_hooks() -> tuple[tuple[str, str, bool], ...]:
    """(id, type, is_global) of every active filter and action, newest change first."""
    return state.cached("active_hooks", None, _load_active_hooks)


def _load_active_hooks() -> tuple[tuple[str, str, bool], ...]:
    kinds = [FunctionType.FILTER, FunctionType.ACTION]
    active = Function.objects.filter(is_active=True, type__in=kinds)
    return tuple(active.values_list("id", "type", "is_global"))


def wiring_for(model_id: str) -> Wiring:
    """The active global filters and actions plus those attached to this model (cached)."""
    settings = _all_settings().get(model_id)
    attached = (settings.filter_ids | settings.action_ids) if settings else frozenset()
    applied = [(i, kind) for i, kind, is_global in _active_hooks() if is_global or i in attached]
    return Wiring(
        filter_ids=tuple(i for i, kind in applied if kind == FunctionType.FILTER),
        action_ids=tuple(i for i, kind in applied if kind == FunctionType.ACTION),
        default_filter_ids=settings.default_filter_ids if settings else (),
    )


def model_wiring(model_id: str) -> ModelWiring:
    """wiring_for, with the functions themselves (one query)."""
    wiring = wiring_for(model_id)
    ids = [*wiring.filter_ids, *wiring.action_ids]
    found = Function.objects.select_related("current_revision").in_bulk(ids)
    return ModelWiring(
        filters=[found[i] for i in wiring.filter_ids if i in found],
        actions=[found[i] for i in wiring.action_ids if i in found],
        default_filter_ids=list(wiring.default_filter_ids),
    )


def model_allowed(*, user, model_id: str, settings: ModelSettings | None = None) -> bool:
    """Whether a user may use a model: staff always; else everyone unless restricted.
    `settings`: the model's row when the caller has it; else the cached settings."""
    if user is None or not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    if settings is not None:
        users = frozenset(u.pk for u in settings.allowed_users.all())
        groups = frozenset(g.pk for g in settings.allowed_groups.all())
    else:
        cached = _all_settings().get(model_id)
        if cached is None:
            return True
        users, groups = cached.user_ids, cached.group_ids
    if not users and not groups:
        return True
    return user.pk in users or bool(groups & user_group_ids(user.pk))


def user_group_ids(user_id: int) -> frozenset[int]:
    """The ids of a user's groups (cached per generation)."""
    return state.cached("groups", user_id, lambda: _load_groups(user_id))


def _load_groups(user_id: int) -> frozenset[int]:
    return frozenset(Group.objects.filter(user__pk=user_id).values_list("pk", flat=True))
