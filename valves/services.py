"""Valve services: the only code that writes valve rows, and the server's view of valves.

The server never holds a plugin's Valves class. It works from the valves spec in
the function's load report (valves.spec: fields, kinds, defaults, which are
secret) and asks the function's worker to validate and to list dynamic options.

Storage follows Open WebUI: an update drops None values, is validated with the
plugin's own pydantic class (in its worker), and stores only the fields explicitly
set (`model_dump(exclude_unset=True)`, JSON mode), so code defaults keep applying
to the rest. Secret fields never go into `data`: they are kept, merged with the
previously stored ones, in one Fernet token in `secrets`.

Errors: updates raise ValidationError (field errors keyed by valve name, or code
"no_valves"), PermissionDenied, or PluginUnavailable for code that cannot load; a
rejected update changes nothing. `valves_state_*` never raise for bad stored data:
they report it in `ValvesState.errors`, so pages stay usable.
"""

import copy
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet

from fnplatform import state
from fnplatform.permissions import require_perm
from functions.models import Function
from functions.selectors import function_list_for, function_usable_by
from functions.services.executor import ExecutorError, run_blocking
from functions.services.host import user_scope
from functions.services.reports import function_report, plugin_target
from valves.crypto import SecretsDecryptError, decrypt_json, encrypt_json
from valves.models import FunctionValves, UserValves
from valves.spec import NON_FIELD, SECRET_MASK

logger = logging.getLogger(__name__)

User = AbstractBaseUser | AnonymousUser
ValvesRow = FunctionValves | UserValves

__all__ = ["SECRET_MASK", "ValvesState"]


@dataclass
class ValvesState:
    """What a page or API shows about stored valves; never holds a plaintext secret.

    `values` holds only the explicitly stored fields (secrets as SECRET_MASK);
    `stored` says whether a row exists at all (the API returns null otherwise).
    """

    values: dict[str, Any] = field(default_factory=dict)
    secrets_set: dict[str, bool] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    has_schema: bool = False
    stored: bool = False


def secret_fields(spec: dict | None) -> set[str]:
    """Return the names of a valves spec's secret fields."""
    return {f["name"] for f in (spec or {}).get("fields", []) if f.get("secret")}


def field_names(spec: dict | None) -> set[str]:
    return {f["name"] for f in (spec or {}).get("fields", [])}


# Reads.


def valves_spec(*, function: Function, user: bool = False) -> dict | None:
    """Return the spec of the function's Valves (or UserValves), or None without one.
    Raise PluginUnavailable when its code cannot load."""
    report = function_report(function)
    return report.user_valves if user else report.valves


def valves_functions_for(*, user: User) -> QuerySet[Function]:
    """Return the functions a user may use that declare UserValves."""
    # The loader's report is stored on each revision, so no plugin is loaded here.
    return function_list_for(user=user).filter(current_revision__load_result__has_user_valves=True)


def _ask_worker(function: Function, which: str, **fields: Any) -> dict[str, Any]:
    """Have the function's worker validate values or list options with its classes.
    Whatever goes wrong there (the plugin, its worker, a quarantine) is a ValidationError
    naming the function; what the worker answers is checked before it is used."""
    target = plugin_target(function, runnable=True)
    try:
        answer = run_blocking(lambda executor: executor.valves(target, which, **fields))
    except (ExecutorError, OSError, RuntimeError, TimeoutError) as exc:
        raise ValidationError(
            f"Could not check the {which} of {function.id!r}: {exc}", code="worker_failed"
        ) from exc
    return _checked_answer(answer)


def _checked_answer(answer: Any) -> dict[str, Any]:
    """The worker's answer with only the shapes the services use (a plugin can write
    anything on its own worker's socket)."""
    answer = answer if isinstance(answer, dict) else {}
    errors = answer.get("errors")
    if isinstance(errors, dict):
        return {"errors": {str(k): [str(m) for m in _as_list(v)] for k, v in errors.items()}}
    checked: dict[str, Any] = {}
    if isinstance(answer.get("data"), dict):
        checked["data"] = answer["data"]
    options = answer.get("options")
    if isinstance(options, dict):
        checked["options"] = {
            str(name): value if isinstance(value, dict) else _pairs(value)
            for name, value in options.items()
        }
    return checked


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _pairs(value: Any) -> list[list[Any]]:
    pairs = [p for p in _as_list(value) if isinstance(p, list | tuple) and len(p) == 2]
    return [[v, str(label)] for v, label in pairs]


def _which(user: bool) -> str:
    return "UserValves" if user else "Valves"


def valves_schema(
    *, function: Function, user: bool = False, viewer: User | None = None
) -> dict | None:
    """Return the JSON schema of Valves (or UserValves) with options resolved and secrets
    masked. `viewer` is the user passed as __user__ to dynamic option methods that take it."""
    spec = valves_spec(function=function, user=user)
    if spec is None:
        return None
    schema = copy.deepcopy(spec["schema"])
    properties = schema.get("properties", {})
    for name, options in valves_options(function=function, user=user, viewer=viewer).items():
        entry = next((f for f in spec["fields"] if f["name"] == name), None)
        if entry is None:
            continue
        hint = properties.get(entry["alias"] or name, {}).get("input")
        if not isinstance(hint, dict):
            continue
        if isinstance(options, dict):
            hint["options"], hint["options_error"] = [], options.get("error", "")
        else:
            hint["options"] = [{"value": value, "label": label} for value, label in options]
    return schema


def valves_options(
    *, function: Function, user: bool = False, viewer: User | None = None
) -> dict[str, Any]:
    """Return {field: [[value, label], ...] or {"error": why}} for the spec's dynamic
    option lists, from the function's worker; {} when it has none."""
    spec = valves_spec(function=function, user=user)
    if spec is None or not any(f.get("options_method") for f in spec["fields"]):
        return {}
    answer = _ask_worker(function, _which(user), spec=spec, user=user_info(viewer))
    return answer.get("options") or {}


def user_info(user: User | None) -> dict[str, Any] | None:
    """Return the small __user__ dict an option method receives."""
    return user_scope(user)


def valves_explicit_global(*, function: Function) -> dict[str, Any]:
    """Return the function's stored Valves values (secrets decrypted), for its worker.

    Cached per generation (fnplatform.state): decrypted secrets stay in this process's
    memory, never in a log or a page."""
    values = state.cached("valves", function.id, lambda: _load_global(function.id))
    return dict(values)


def _load_global(function_id: str) -> dict[str, Any]:
    return _explicit(FunctionValves.objects.filter(function_id=function_id).first())


def valves_explicit_user(*, user: User, function: Function) -> dict[str, Any]:
    """Return a user's stored UserValves values for a function ({} when none or unreadable;
    the worker falls back to the defaults for values that no longer fit, as Open WebUI)."""
    if user is None or not user.is_authenticated:
        return {}
    return dict(user_valves_of(user.pk).get(function.id, {}))


def user_valves_of(user_id: int) -> dict[str, dict[str, Any]]:
    """Every stored UserValves of one user, by function id, secrets decrypted (cached per
    generation; read-only). Only ever handed to that user's own calls."""
    return state.cached("user_valves", user_id, lambda: _load_user_valves(user_id))


def _load_user_valves(user_id: int) -> dict[str, dict[str, Any]]:
    values = {}
    for row in UserValves.objects.filter(user_id=user_id):
        try:
            values[row.function_id] = _explicit(row)
        except SecretsDecryptError as exc:
            logger.warning(
                "user valves of %s for user %s unreadable: %s", row.function_id, user_id, exc
            )
            values[row.function_id] = {}
    return values


def valves_state_global(*, function: Function, check: bool = False) -> ValvesState:
    """Return the stored global valves for display, with problems listed; never raise for
    them. `check` also has the function's worker say which stored values no longer fit."""
    row = FunctionValves.objects.filter(function=function).first()
    return _state_for(function, row, user=False, check=check)


def valves_public_global(*, function: Function) -> dict[str, Any] | None:
    """The function's stored global valves without its secret fields (None when none are
    stored): what an export or a plugin's own `Functions` lookup may carry."""
    state = valves_state_global(function=function)
    public = {k: v for k, v in state.values.items() if k not in state.secrets_set}
    return public or None


def valves_state_user(*, user: User, function: Function, check: bool = False) -> ValvesState:
    """Return a user's stored valves for display, with problems listed; never raise for
    them. `check` also has the function's worker say which stored values no longer fit."""
    row = None
    if user is not None and user.is_authenticated:
        row = UserValves.objects.filter(user=user, function=function).first()
    return _state_for(function, row, user=True, check=check)


def _state_for(
    function: Function, row: ValvesRow | None, *, user: bool, check: bool
) -> ValvesState:
    try:
        spec = valves_spec(function=function, user=user)
    except ValidationError as exc:
        state = build_state(None, row)
        state.errors.setdefault(NON_FIELD_ERRORS, []).extend(exc.messages)
        return state
    state = build_state(spec, row)
    if check and spec is not None and row is not None and not state.errors:
        try:
            checked = _ask_worker(function, _which(user), values=_explicit(row))
        except ValidationError as exc:
            checked = {"errors": {NON_FIELD: exc.messages}}
        state.errors.update(_form_errors(checked.get("errors") or {}))
    return state


def _form_errors(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    return {NON_FIELD_ERRORS if k == NON_FIELD else k: v for k, v in errors.items()}


def build_state(spec: dict | None, row: ValvesRow | None) -> ValvesState:
    """Return the ValvesState of a stored row (or None) against a valves spec (or None).
    Whether the stored values still validate is the worker's to say (`_state_for`)."""
    state = ValvesState(has_schema=spec is not None, stored=row is not None)
    data = dict(row.data or {}) if row is not None else {}
    try:
        secrets = decrypt_json(row.secrets) if row is not None and row.secrets else {}
    except SecretsDecryptError as exc:
        secrets = {}
        state.errors[NON_FIELD_ERRORS] = list(exc.messages)
    names = secret_fields(spec) | set(secrets)
    explicit = {**data, **secrets}
    state.values = {
        key: (SECRET_MASK if value not in (None, "") else value) if key in names else value
        for key, value in explicit.items()
    }
    state.secrets_set = {name: explicit.get(name) not in (None, "") for name in sorted(names)}
    return state


# Writes.


def valves_update_global(
    *, user: User, function: Function, values: dict[str, Any], clear: Iterable[str] = ()
) -> ValvesState:
    """Validate and store global valves; staff only. A None value means "back to the default"."""
    require_perm(user, "valves.change_functionvalves")
    spec = valves_spec(function=function)
    if spec is None:
        raise ValidationError("This function has no Valves.", code="no_valves")
    current = FunctionValves.objects.filter(function=function).first()
    # Validated in the worker before any transaction opens: a slow validator holds no lock.
    data, secrets = _validated(function, spec, current, values, clear, which="Valves")
    with transaction.atomic():
        row, _ = FunctionValves.objects.select_for_update().get_or_create(function=function)
        row.data, row.secrets, row.updated_by = data, secrets, user
        row.save()
    return build_state(spec, row)


def valves_update_user(
    *, user: User, function: Function, values: dict[str, Any], clear: Iterable[str] = ()
) -> ValvesState:
    """Validate and store a user's own valves for a function that user may use."""
    if not function_usable_by(user=user, function=function):
        raise PermissionDenied("You cannot set valves for this function.")
    spec = valves_spec(function=function, user=True)
    if spec is None:
        raise ValidationError("This function has no UserValves.", code="no_valves")
    current = UserValves.objects.filter(user=user, function=function).first()
    data, secrets = _validated(function, spec, current, values, clear, which="UserValves")
    with transaction.atomic():
        row, _ = UserValves.objects.select_for_update().get_or_create(user=user, function=function)
        row.data, row.secrets = data, secrets
        row.save()
    return build_state(spec, row)


def _validated(
    function: Function,
    spec: dict,
    row: ValvesRow | None,
    values: dict[str, Any],
    clear: Iterable[str],
    *,
    which: str,
) -> tuple[dict[str, Any], str]:
    """Merge an update into a row's stored values and validate it in the function's
    worker; return the row's new (data, encrypted secrets)."""
    clear = list(clear)
    unknown = [name for name in clear if name not in field_names(spec)]
    if unknown:
        raise ValidationError({name: ["There is no such valve to clear."] for name in unknown})
    names = secret_fields(spec)
    explicit = _explicit(row, discard_secrets=any(name in names for name in clear))
    for name, value in values.items():
        if name in names and _keeps_secret(value):
            continue
        if value is None:
            explicit.pop(name, None)
        else:
            explicit[name] = value
    for name in clear:
        explicit.pop(name, None)
    _refuse_unsendable(explicit)
    checked = _ask_worker(function, which, values=explicit)
    if checked.get("errors"):
        raise ValidationError(_form_errors(checked["errors"]), code="invalid_valves")
    dumped = checked.get("data") or {}
    secrets = {name: dumped[name] for name in names if name in dumped}
    data = {key: value for key, value in dumped.items() if key not in secrets}
    return data, encrypt_json(secrets) if secrets else ""


# Integers the wire to a worker (msgpack) carries; JSON allows any size.
_WIRE_INT = range(-(2**63), 2**64)


def _refuse_unsendable(explicit: dict[str, Any]) -> None:
    """Refuse numbers too large to reach the plugin intact, naming the valve."""
    bad = [name for name, value in explicit.items() if _has_huge_int(value)]
    if bad:
        raise ValidationError(
            {name: ["This number is too large."] for name in bad}, code="invalid_valves"
        )


def _has_huge_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value not in _WIRE_INT
    if isinstance(value, dict):
        return any(_has_huge_int(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_huge_int(v) for v in value)
    return False


def _keeps_secret(value: Any) -> bool:
    """Whether an update value for a secret means "keep what is stored"."""
    return value is None or value == "" or value == SECRET_MASK


def _explicit(row: ValvesRow | None, *, discard_secrets: bool = False) -> dict[str, Any]:
    """Return a row's explicitly stored values, secrets decrypted ({} for no row).

    With discard_secrets, a token no key can decrypt is dropped instead of raising,
    so clearing secrets is how an admin recovers from a lost key.
    """
    if row is None or row.pk is None:
        return {}
    explicit = dict(row.data or {})
    if row.secrets:
        try:
            explicit.update(decrypt_json(row.secrets))
        except SecretsDecryptError:
            if not discard_secrets:
                raise
    return explicit
