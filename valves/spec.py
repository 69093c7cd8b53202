"""What a plugin's Valves/UserValves class looks like, as plain data (the valves spec).

Only code that runs plugin classes calls `describe_valves` and `validate_valves`: the
save-time check and the workers. The server never holds the class: it builds forms,
masks secrets and splits what it stores from the spec saved in the load report, and
asks a worker to validate.

A spec is {"class": name, "schema": JSON schema (secret defaults masked),
"fields": [field, ...]}, each field {"name", "alias", "title", "description",
"kind", "secret", "required", "default", "options", "options_method"}. `kind` is
how the field is edited: str, textarea, password, int, float, bool, select,
multiselect or json.
"""

import copy
import inspect
import re
import types
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Field, SecretBytes, SecretStr
from pydantic import ValidationError as PydanticValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python

from functions.services.signatures import parameters

SECRET_MASK = "********"
NON_FIELD = "__all__"
# Community plugins rarely mark their keys as passwords, so str fields named like
# a credential are treated as secrets too (OPENAI_API_KEY, BOT_TOKEN, password;
# not max_tokens, which is an int, nor TOKEN_LIMIT, which does not end that way).
SECRET_NAME_RE = re.compile(
    r"(^|_)(api_?key|secret|secret_?key|password|passwd|token|access_?key|private_?key|"
    r"auth_?key|credentials?)$",
    re.IGNORECASE,
)
_KIND_BY_TYPE: dict[Any, str] = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    SecretStr: "password",
    SecretBytes: "password",
}


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
            return {}
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


def reveal(value: Any) -> Any:
    """Return the plain value of a SecretStr/SecretBytes; other values unchanged."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, SecretBytes):
        return value.get_secret_value().decode("utf-8", "replace")
    return value


def valves_model(owner: Any, name: str) -> type[BaseModel] | None:
    """The pydantic class `owner.<name>` (Valves or UserValves), or None."""
    cls = getattr(owner, name, None)
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


class FieldSpec(BaseModel):
    """One valve in a spec, as the server reads it (checked: a spec comes from plugin code)."""

    name: str
    alias: str | None = None
    title: str = ""
    description: str = ""
    kind: Literal[
        "str", "textarea", "password", "int", "float", "bool", "select", "multiselect", "json"
    ]
    secret: bool = False
    required: bool = False
    default: Any = None
    options: list[tuple[Any, str]] | None = None
    options_method: str | None = None


class ValvesSpec(BaseModel):
    model_config = {"populate_by_name": True}

    class_name: str = Field(alias="class")
    json_schema: dict[str, Any] = Field(alias="schema")
    fields: list[FieldSpec]


# Describing a class (runs where plugin code runs)


def describe_valves(cls: type[BaseModel] | None) -> dict[str, Any] | None:
    """Return the spec of a valves class, or None. Never raises for odd plugin types."""
    if cls is None:
        return None
    fields = [_describe_field(name, info) for name, info in cls.model_fields.items()]
    return {"class": cls.__name__, "schema": _schema(cls, fields), "fields": fields}


def _describe_field(name: str, info: FieldInfo) -> dict[str, Any]:
    secret = is_secret_field(name, info)
    hint = input_hint(info)
    annotation = unwrap_optional(info.annotation)
    required = info.default is PydanticUndefined and info.default_factory is None
    default = None if required else _default_of(info)
    if secret:
        default = SECRET_MASK if default not in (None, "", b"") else ""
    options = hint.get("options")
    return {
        "name": name,
        "alias": info.alias,
        "title": info.title or "",
        "description": info.description or "",
        "kind": _kind(annotation, hint, secret),
        "secret": secret,
        "required": required,
        "default": _jsonable(default),
        "options": _static_options(annotation, options),
        "options_method": options if isinstance(options, str) else None,
    }


def _kind(annotation: Any, hint: dict[str, Any], secret: bool) -> str:
    if secret:
        return "password"
    hint_type = hint.get("type")
    if hint_type in ("select", "multiselect") and isinstance(hint.get("options"), list | str):
        return hint_type
    if hint_type == "textarea":
        return "textarea"
    if annotation in _KIND_BY_TYPE:
        return _KIND_BY_TYPE[annotation]
    if get_origin(annotation) is Literal:
        return "select"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "select"
    return "json"


def _static_options(annotation: Any, options: Any) -> list[list[Any]] | None:
    """(value, label) pairs from an `input.options` list, a Literal or an Enum."""
    if isinstance(options, list):
        return [list(option_pair(item)) for item in options]
    if get_origin(annotation) is Literal:
        return [[_jsonable(v), str(v)] for v in get_args(annotation)]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [[_jsonable(m.value), str(m.value)] for m in annotation]
    return None


def option_pair(item: Any) -> tuple[Any, str]:
    if isinstance(item, dict):
        value = _jsonable(item.get("value"))
        return value, str(item.get("label", value))
    return _jsonable(item), str(item)


def _default_of(info: FieldInfo) -> Any:
    try:
        return reveal(info.get_default(call_default_factory=True, validated_data={}))
    except Exception:  # a plugin default_factory failing must not break the form
        return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        value = value.value
    try:
        return to_jsonable_python(value)
    except Exception:
        return str(value)


def _schema(cls: type[BaseModel], fields: list[dict]) -> dict[str, Any]:
    try:
        schema = copy.deepcopy(cls.model_json_schema())
    except Exception as exc:  # plugin types that pydantic cannot describe
        return {"title": cls.__name__, "type": "object", "properties": {}, "error": str(exc)}
    properties = schema.get("properties", {})
    for field in fields:
        prop = properties.get(field["alias"] or field["name"])
        if prop is not None and field["secret"] and prop.get("default") not in (None, ""):
            prop["default"] = SECRET_MASK
    return schema


# Validating and listing options (run where plugin code runs)


def build_valves(cls: type[BaseModel], explicit: dict[str, Any]):
    """Return (instance, None) or (None, {field: [message]}) for explicit values."""
    try:
        return cls(**{k: v for k, v in explicit.items() if v is not None}), None
    except PydanticValidationError as exc:
        return None, pydantic_errors(exc)
    except Exception as exc:  # plugin validators may raise anything
        return None, {NON_FIELD: [f"{type(exc).__name__}: {exc}"]}


def validate_valves(cls: type[BaseModel], explicit: dict[str, Any]) -> dict[str, Any]:
    """Validate explicit values with the plugin's class, as Open WebUI stores them.

    Return {"data": model_dump(exclude_unset=True) in JSON mode with secrets revealed}
    or {"errors": {field: [message]}} (never the offending input).
    """
    instance, errors = build_valves(cls, explicit)
    if errors is not None:
        return {"errors": errors}
    try:
        dumped = instance.model_dump(mode="json", exclude_unset=True)
    except Exception as exc:  # a plugin serializer failing
        return {"errors": {NON_FIELD: [f"Valves cannot be stored: {exc}"]}}
    for name in dumped:
        if name in cls.model_fields:
            dumped[name] = _jsonable(reveal(getattr(instance, name)))
    return {"data": dumped}


def pydantic_errors(exc: PydanticValidationError) -> dict[str, list[str]]:
    """Return pydantic errors as {field: [message]}; never includes the offending input."""
    errors: dict[str, list[str]] = {}
    for error in exc.errors(include_input=False, include_url=False):
        loc = error.get("loc") or ()
        name = str(loc[0]) if loc else NON_FIELD
        where = ".".join(str(part) for part in loc[1:])
        message = error["msg"] + (f" (at {where})" if where else "")
        errors.setdefault(name, []).append(message)
    return errors


def resolve_options(cls: type[BaseModel], spec: dict, user: dict | None) -> dict[str, Any]:
    """Call each field's dynamic options method: {field: [[value, label], ...]} or
    {field: {"error": why}} for a method that fails."""
    resolved: dict[str, Any] = {}
    for field in spec["fields"]:
        method_name = field.get("options_method")
        if not method_name:
            continue
        try:
            resolved[field["name"]] = _call_options(cls, method_name, user)
        except Exception as exc:  # plugin code: show an empty list and say why
            resolved[field["name"]] = {"error": f"{type(exc).__name__}: {exc}"}
    return resolved


def _call_options(cls: type[BaseModel], method_name: str, user: dict | None) -> list:
    method = getattr(cls, method_name, None)
    if not callable(method):
        raise TypeError(f"{cls.__name__} has no method {method_name!r}")
    accepts_user = "__user__" in (parameters(method) or {})
    result = method(__user__=user) if accepts_user else method()
    if inspect.isawaitable(result):
        if hasattr(result, "close"):
            result.close()
        raise TypeError("async option methods are not supported")
    if not isinstance(result, list):
        raise TypeError(f"{method_name}() returned {type(result).__name__}, not a list")
    return [list(option_pair(item)) for item in result]
