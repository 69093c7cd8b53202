"""Valve services: the only code that reads plugins' valve classes and writes valve rows.

Storage follows Open WebUI: an update drops None values, validates with the
plugin's own pydantic class, and stores only the fields explicitly set
(`model_dump(exclude_unset=True)`, JSON mode), so code defaults keep applying to
the rest. Secret fields (see `secret_fields`) never go into `data`: they are
kept, merged with the previously stored ones, in one Fernet token in `secrets`.

Errors: updates raise ValidationError (field errors keyed by valve name, or
code "no_valves"), PermissionDenied, or the loader's SourceError; a rejected
update changes nothing. `valves_state_*` never raise for bad stored data: they
report it in `ValvesState.errors`, so pages stay usable.
"""

import copy
import inspect
import logging
import re
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, Union, get_args, get_origin

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from pydantic import BaseModel, SecretBytes, SecretStr
from pydantic import ValidationError as PydanticValidationError
from pydantic.fields import FieldInfo

from fnplatform.permissions import require_perm
from functions.models import Function
from functions.selectors import function_list_for, function_usable_by
from functions.services.registry import get_plugin
from valves.crypto import SecretsDecryptError, decrypt_json, encrypt_json
from valves.models import FunctionValves, UserValves

logger = logging.getLogger(__name__)

User = AbstractBaseUser | AnonymousUser
ValvesRow = FunctionValves | UserValves

SECRET_MASK = "********"
# Community plugins rarely mark their keys as passwords, so str fields named like
# a credential are treated as secrets too (OPENAI_API_KEY, BOT_TOKEN, password;
# not max_tokens, which is an int, nor TOKEN_LIMIT, which does not end that way).
SECRET_NAME_RE = re.compile(
    r"(^|_)(api_?key|secret|secret_?key|password|passwd|token|access_?key|private_?key|"
    r"auth_?key|credentials?)$",
    re.IGNORECASE,
)


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


# Field introspection, shared with valves.forms.


def unwrap_optional(annotation: Any) -> Any:
    """Return X for Optional[X], X | None and Annotated[X, ...]; other annotations unchanged."""
    if get_origin(annotation) is Annotated:
        return unwrap_optional(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return unwrap_optional(args[0])
    return annotation


def schema_extra(info: FieldInfo) -> dict[str, Any]:
    """Return a field's json_schema_extra as a dict, calling it when it is a callable."""
    extra = info.json_schema_extra
    if callable(extra):
        built: dict[str, Any] = {}
        try:
            extra(built)
        except Exception:  # plugin code: a broken hint must not break the page
            logger.warning("json_schema_extra callable failed", exc_info=True)
        return built
    return dict(extra or {})


def input_hint(info: FieldInfo) -> dict[str, Any]:
    """Return the Open WebUI `input` hint of a field ({"type": ..., "options": ...}) or {}."""
    hint = schema_extra(info).get("input")
    return dict(hint) if isinstance(hint, dict) else {}


def is_secret_field(name: str, info: FieldInfo) -> bool:
    """Whether a field holds a secret: password hint, SecretStr/SecretBytes, or a key-like name."""
    extra = schema_extra(info)
    if input_hint(info).get("type") == "password" or extra.get("format") == "password":
        return True
    annotation = unwrap_optional(info.annotation)
    if annotation in (SecretStr, SecretBytes):
        return True
    return annotation is str and bool(SECRET_NAME_RE.search(name))


def secret_fields(model_cls: type[BaseModel] | None) -> set[str]:
    """Return the names of a valves class's secret fields."""
    if model_cls is None:
        return set()
    return {name for name, info in model_cls.model_fields.items() if is_secret_field(name, info)}


def reveal(value: Any) -> Any:
    """Return the plain value of a SecretStr/SecretBytes; other values unchanged."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, SecretBytes):
        return value.get_secret_value().decode("utf-8", "replace")
    return value


# Reads.


def valves_class_for(*, function: Function, user: bool = False) -> type[BaseModel] | None:
    """Return the plugin's Valves (or UserValves) class, or None. Raise SourceError."""
    plugin = get_plugin(function)
    return plugin.user_valves_class if user else plugin.valves_class


def valves_functions_for(*, user: User) -> QuerySet[Function]:
    """Return the functions a user may use that declare UserValves."""
    # The loader's report is stored on each revision, so no plugin is loaded here.
    return function_list_for(user=user).filter(current_revision__load_result__has_user_valves=True)


def valves_schema(
    *, function: Function, user: bool = False, viewer: User | None = None
) -> dict | None:
    """Return the JSON schema of Valves (or UserValves) with options resolved and secrets masked.

    `viewer` is the user passed as __user__ to dynamic option methods that accept it.
    """
    cls = valves_class_for(function=function, user=user)
    if cls is None:
        return None
    try:
        schema = copy.deepcopy(cls.model_json_schema())
    except Exception as exc:  # plugin types that pydantic cannot describe
        raise ValidationError(
            f"The {'UserValves' if user else 'Valves'} of {function.id!r} have no JSON schema: "
            f"{exc}",
            code="invalid_schema",
        ) from exc
    properties = schema.get("properties", {})
    for name, info in cls.model_fields.items():
        prop = properties.get(info.alias or name)
        if prop is None:
            continue
        if is_secret_field(name, info) and prop.get("default") not in (None, ""):
            prop["default"] = SECRET_MASK
        _resolve_options(cls, prop, viewer)
    return schema


def _resolve_options(cls: type[BaseModel], prop: dict, viewer: User | None) -> None:
    """Replace {"input": {"options": "method_name"}} by what that method returns."""
    hint = prop.get("input")
    if not isinstance(hint, dict) or not isinstance(hint.get("options"), str):
        return
    method_name = hint["options"]
    method = getattr(cls, method_name, None)
    try:
        if not callable(method):
            raise TypeError(f"{cls.__name__} has no method {method_name!r}")
        options = _call_options(method, viewer)
        if not isinstance(options, list):
            raise TypeError(f"{method_name}() returned {type(options).__name__}, not a list")
        hint["options"] = options
    except Exception as exc:  # plugin code: show an empty list and say why
        logger.warning("valve options %s failed: %s", method_name, exc)
        hint["options"] = []
        hint["options_error"] = f"{type(exc).__name__}: {exc}"


def _call_options(method: Any, viewer: User | None) -> Any:
    try:
        accepts_user = "__user__" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        accepts_user = False
    result = method(__user__=user_info(viewer)) if accepts_user else method()
    if inspect.isawaitable(result):
        if hasattr(result, "close"):
            result.close()
        raise TypeError("async option methods are not supported")
    return result


def user_info(user: User | None) -> dict[str, Any] | None:
    """Return the small __user__ dict an option method receives."""
    if user is None or not user.is_authenticated:
        return None
    return {
        "id": str(user.pk),
        "email": getattr(user, "email", ""),
        "name": user.get_full_name() or user.get_username(),
        "role": "admin" if user.is_staff else "user",
    }


def valves_get_global(*, function: Function) -> BaseModel | None:
    """Return the function's Valves instance for running it (None without a Valves class).

    Raise ValidationError naming the function and fields when stored values no longer fit.
    """
    cls = valves_class_for(function=function)
    if cls is None:
        return None
    explicit = _explicit(FunctionValves.objects.filter(function=function).first())
    try:
        return _build(cls, explicit)
    except ValidationError as exc:
        raise ValidationError(
            f"The stored valves of function {function.id!r} no longer fit its Valves: "
            f"{_summary(exc)}. Edit them to fix this.",
            code="invalid_stored_valves",
        ) from exc


def valves_get_user(*, user: User, function: Function) -> BaseModel | None:
    """Return a user's UserValves instance, falling back to defaults when stored ones are bad."""
    cls = valves_class_for(function=function, user=True)
    if cls is None:
        return None
    if user is None or not user.is_authenticated:
        return cls()
    try:
        row = UserValves.objects.filter(user=user, function=function).first()
        return _build(cls, _explicit(row))
    except ValidationError as exc:
        # Open WebUI does the same: a user's bad values must not break the chat.
        logger.warning(
            "user valves of %s for user %s ignored: %s", function.id, user.pk, _summary(exc)
        )
        return cls()


def valves_state_global(*, function: Function) -> ValvesState:
    """Return the stored global valves for display, with problems listed; never raise for them."""
    row = FunctionValves.objects.filter(function=function).first()
    return _state_for(function, row, user=False)


def valves_state_user(*, user: User, function: Function) -> ValvesState:
    """Return a user's stored valves for display, with problems listed; never raise for them."""
    row = None
    if user is not None and user.is_authenticated:
        row = UserValves.objects.filter(user=user, function=function).first()
    return _state_for(function, row, user=True)


def _state_for(function: Function, row: ValvesRow | None, *, user: bool) -> ValvesState:
    try:
        cls = valves_class_for(function=function, user=user)
    except ValidationError as exc:
        state = build_state(None, row)
        state.errors.setdefault(NON_FIELD_ERRORS, []).extend(exc.messages)
        return state
    return build_state(cls, row)


def build_state(cls: type[BaseModel] | None, row: ValvesRow | None) -> ValvesState:
    """Return the ValvesState of a stored row (or None) against a valves class (or None)."""
    state = ValvesState(has_schema=cls is not None, stored=row is not None)
    data = dict(row.data or {}) if row is not None else {}
    try:
        secrets = decrypt_json(row.secrets) if row is not None and row.secrets else {}
    except SecretsDecryptError as exc:
        secrets = {}
        state.errors[NON_FIELD_ERRORS] = list(exc.messages)
    names = secret_fields(cls) | set(secrets)
    explicit = {**data, **secrets}
    state.values = {
        key: (SECRET_MASK if value not in (None, "") else value) if key in names else value
        for key, value in explicit.items()
    }
    state.secrets_set = {name: explicit.get(name) not in (None, "") for name in sorted(names)}
    if cls is not None:
        try:
            _build(cls, explicit)
        except ValidationError as exc:
            state.errors.update(exc.message_dict)
    return state


# Writes.


def valves_update_global(
    *, user: User, function: Function, values: dict[str, Any], clear: Iterable[str] = ()
) -> ValvesState:
    """Validate and store global valves; staff only. A None value means "back to the default"."""
    require_perm(user, "valves.change_functionvalves")
    cls = valves_class_for(function=function)
    if cls is None:
        raise ValidationError("This function has no Valves.", code="no_valves")
    with transaction.atomic():
        row, _ = FunctionValves.objects.select_for_update().get_or_create(function=function)
        _apply(cls, row, values, clear)
        row.updated_by = user
        row.save()
    return build_state(cls, row)


def valves_update_user(
    *, user: User, function: Function, values: dict[str, Any], clear: Iterable[str] = ()
) -> ValvesState:
    """Validate and store a user's own valves for a function that user may use."""
    if not function_usable_by(user=user, function=function):
        raise PermissionDenied("You cannot set valves for this function.")
    cls = valves_class_for(function=function, user=True)
    if cls is None:
        raise ValidationError("This function has no UserValves.", code="no_valves")
    with transaction.atomic():
        row, _ = UserValves.objects.select_for_update().get_or_create(user=user, function=function)
        _apply(cls, row, values, clear)
        row.save()
    return build_state(cls, row)


def _apply(
    cls: type[BaseModel], row: ValvesRow, values: dict[str, Any], clear: Iterable[str]
) -> None:
    """Merge an update into a row's stored values, validate, and set data and secrets."""
    clear = list(clear)
    unknown = [name for name in clear if name not in cls.model_fields]
    if unknown:
        raise ValidationError({name: ["There is no such valve to clear."] for name in unknown})
    names = secret_fields(cls)
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
    instance = _build(cls, explicit)
    try:
        dumped = instance.model_dump(mode="json", exclude_unset=True)
    except Exception as exc:  # a plugin serializer failing
        raise ValidationError(f"Valves cannot be stored: {exc}", code="invalid_valves") from exc
    secrets = {name: reveal(getattr(instance, name)) for name in names if name in dumped}
    row.data = {key: value for key, value in dumped.items() if key not in secrets}
    row.secrets = encrypt_json(secrets) if secrets else ""


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


def _build(cls: type[BaseModel], explicit: dict[str, Any]) -> BaseModel:
    """Instantiate a valves class from explicit values (None dropped), as field errors."""
    try:
        return cls(**{key: value for key, value in explicit.items() if value is not None})
    except PydanticValidationError as exc:
        raise ValidationError(pydantic_errors(exc), code="invalid_valves") from None
    except Exception as exc:  # plugin validators may raise anything
        raise ValidationError(
            {NON_FIELD_ERRORS: [f"{type(exc).__name__}: {exc}"]}, code="invalid_valves"
        ) from None


def pydantic_errors(exc: PydanticValidationError) -> dict[str, list[str]]:
    """Return pydantic errors as {field: [message]}; never includes the offending input."""
    errors: dict[str, list[str]] = {}
    for error in exc.errors(include_input=False, include_url=False):
        loc = error.get("loc") or ()
        name = str(loc[0]) if loc else NON_FIELD_ERRORS
        where = ".".join(str(part) for part in loc[1:])
        message = error["msg"] + (f" (at {where})" if where else "")
        errors.setdefault(name, []).append(message)
    return errors


def _summary(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in exc.message_dict.items())
    return " ".join(exc.messages)
