"""Django forms built from a plugin's pydantic Valves/UserValves class.

Every field is optional: empty means "use the code default" (None to the
service). Secret fields render as password inputs that never show the stored
value; leaving one empty keeps it, and a `<name>__clear` checkbox removes it.
Which Django field a valve gets is decided in one place: `field_kind` picks a
kind and `_BUILDERS` maps each kind to a builder.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, get_args, get_origin

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from pydantic import BaseModel, SecretBytes, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from valves.services import SECRET_MASK, ValvesState, input_hint, is_secret_field, unwrap_optional

CLEAR_SUFFIX = "__clear"
MAX_DEFAULT_CHARS = 80
_NO_DEFAULT = object()

_KIND_BY_TYPE: dict[Any, str] = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    SecretStr: "password",
    SecretBytes: "password",
}


@dataclass(frozen=True)
class ValveField:
    """What the builders need to know about one pydantic field."""

    name: str
    info: FieldInfo
    annotation: Any
    hint: dict[str, Any]
    secret: bool
    is_set: bool
    default: Any
    defaults_visible: bool

    @property
    def default_text(self) -> str:
        return _display(self.default, secret=self.secret)

    @property
    def options(self) -> list[tuple[Any, str]]:
        """Return (value, label) pairs from Literal, Enum or an `input.options` list."""
        if isinstance(self.hint.get("options"), list):
            return [_option(item) for item in self.hint["options"]]
        if get_origin(self.annotation) is Literal:
            return [(value, str(value)) for value in get_args(self.annotation)]
        return [(member.value, str(member.value)) for member in self.annotation]


class ValvesForm(forms.Form):
    """Base of the generated forms; the class attributes drive form_values()."""

    valve_names: tuple[str, ...] = ()
    secret_names: frozenset[str] = frozenset()


def field_kind(field: ValveField) -> str:
    """Return the form kind of a valve: the one decision of how it is edited."""
    if field.secret:
        return "password"
    hint_type = field.hint.get("type")
    if hint_type in ("select", "multiselect") and isinstance(field.hint.get("options"), list):
        return hint_type
    if hint_type == "textarea":
        return "textarea"
    annotation = field.annotation
    if annotation in _KIND_BY_TYPE:
        return _KIND_BY_TYPE[annotation]
    if get_origin(annotation) is Literal:
        return "select"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "select"
    return "json"


def _common(field: ValveField, *extra_help: str) -> dict[str, Any]:
    parts = [field.info.description or "", *extra_help]
    if field.defaults_visible and field.default is not _NO_DEFAULT:
        parts.append(f"Default: {field.default_text}")
    elif field.default is _NO_DEFAULT:
        parts.append("Required.")
    # Escaped here, so templates that render help_text with |safe (Django's own) stay safe.
    help_text: SafeString = mark_safe(" ".join(escape(part) for part in parts if part))
    return {"required": False, "label": field.info.title or field.name, "help_text": help_text}


def _text(field: ValveField) -> forms.Field:
    # Not stripped: prefixes and separators ("echo: ") often end in a space.
    return forms.CharField(empty_value=None, strip=False, **_common(field))


def _textarea(field: ValveField) -> forms.Field:
    widget = forms.Textarea(attrs={"rows": 4})
    return forms.CharField(widget=widget, empty_value=None, strip=False, **_common(field))


def _password(field: ValveField) -> forms.Field:
    status = "Set — leave empty to keep." if field.is_set else "Not set."
    widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
    return forms.CharField(widget=widget, empty_value=None, strip=False, **_common(field, status))


def _boolean(field: ValveField) -> forms.Field:
    # A select, not a checkbox: an unchecked box cannot say "use the default".
    choices = [("", f"Default ({field.default_text})"), ("True", "Yes"), ("False", "No")]
    return forms.TypedChoiceField(
        choices=choices, coerce=lambda value: value == "True", empty_value=None, **_common(field)
    )


def _choice(field: ValveField) -> forms.Field:
    lookup = {str(value): value for value, _ in field.options}
    choices = [("", f"Default ({field.default_text})")]
    choices += [(str(value), label) for value, label in field.options]
    return forms.TypedChoiceField(
        choices=choices, coerce=lookup.__getitem__, empty_value=None, **_common(field)
    )


def _multiple_choice(field: ValveField) -> forms.Field:
    lookup = {str(value): value for value, _ in field.options}
    return forms.TypedMultipleChoiceField(
        choices=[(str(value), label) for value, label in field.options],
        coerce=lookup.__getitem__,
        empty_value=None,
        **_common(field),
    )


def _json(field: ValveField) -> forms.Field:
    widget = forms.Textarea(attrs={"rows": 3})
    return forms.JSONField(widget=widget, **_common(field, "JSON."))


_BUILDERS: dict[str, Callable[[ValveField], forms.Field]] = {
    "str": _text,
    "textarea": _textarea,
    "password": _password,
    "int": lambda field: forms.IntegerField(**_common(field)),
    "float": lambda field: forms.FloatField(**_common(field)),
    "bool": _boolean,
    "select": _choice,
    "multiselect": _multiple_choice,
    "json": _json,
}


def form_class_for(
    model_cls: type[BaseModel],
    *,
    secrets_set: dict[str, bool] | None = None,
    defaults_visible: bool = True,
    schema: dict | None = None,
) -> type[ValvesForm]:
    """Return a Form class for a valves class.

    Pass `schema` (from valves_schema) to use its resolved dynamic select options.
    """
    secrets_set = secrets_set or {}
    properties = (schema or {}).get("properties", {})
    attrs: dict[str, Any] = {}
    secret_names = set()
    for name, info in model_cls.model_fields.items():
        field = _valve_field(name, info, properties, secrets_set, defaults_visible)
        attrs[name] = _BUILDERS[field_kind(field)](field)
        if field.secret:
            secret_names.add(name)
            if field.is_set:
                attrs[name + CLEAR_SUFFIX] = forms.BooleanField(
                    required=False, label="Clear stored value"
                )
    attrs["valve_names"] = tuple(model_cls.model_fields)
    attrs["secret_names"] = frozenset(secret_names)
    return type(f"{model_cls.__name__}Form", (ValvesForm,), attrs)


def _valve_field(
    name: str, info: FieldInfo, properties: dict, secrets_set: dict, defaults_visible: bool
) -> ValveField:
    hint = input_hint(info)
    resolved = properties.get(info.alias or name, {}).get("input")
    if isinstance(resolved, dict):
        hint = resolved
    return ValveField(
        name=name,
        info=info,
        annotation=unwrap_optional(info.annotation),
        hint=hint,
        secret=is_secret_field(name, info),
        is_set=bool(secrets_set.get(name)),
        default=_default_of(info),
        defaults_visible=defaults_visible,
    )


def _default_of(info: FieldInfo) -> Any:
    if info.default is PydanticUndefined and info.default_factory is None:
        return _NO_DEFAULT
    try:
        return info.get_default(call_default_factory=True, validated_data={})
    except Exception:  # a plugin default_factory failing must not break the form
        return None


def _display(value: Any, *, secret: bool = False) -> str:
    """Return a short human text for a default value, masking secrets."""
    if secret:
        plain = value.get_secret_value() if isinstance(value, SecretStr | SecretBytes) else value
        return SECRET_MASK if plain not in (None, "", b"") else "empty"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, Enum):
        value = value.value
    if value == "":
        return "empty"
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, default=str)
        except (TypeError, ValueError):
            text = str(value)
    return text if len(text) <= MAX_DEFAULT_CHARS else text[: MAX_DEFAULT_CHARS - 1] + "…"


def _option(item: Any) -> tuple[Any, str]:
    if isinstance(item, dict):
        value = item.get("value")
        return value, str(item.get("label", value))
    return item, str(item)


def form_initial(state: ValvesState) -> dict[str, Any]:
    """Return form initial data from stored values; secrets are never sent back to the page."""
    # Select widgets render str(value), so True matches the "True" choice and 1 matches "1".
    return {name: value for name, value in state.values.items() if name not in state.secrets_set}


def form_values(form: ValvesForm) -> tuple[dict[str, Any], list[str]]:
    """Return (values, clear) for the valves service from a valid form."""
    values = {}
    for name in form.valve_names:
        value = form.cleaned_data.get(name)
        values[name] = None if value is None or value == "" or value == [] else value
    clear = [name for name in form.secret_names if form.cleaned_data.get(name + CLEAR_SUFFIX)]
    return values, clear


def apply_field_errors(form: forms.Form, exc: ValidationError) -> None:
    """Put a service ValidationError onto a form: field errors on fields, the rest on top."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for name, errors in exc.error_dict.items():
        if name in form.fields:
            form.add_error(name, errors)
        elif name == NON_FIELD_ERRORS:
            form.add_error(None, errors)
        else:
            form.add_error(None, [f"{name}: {message}" for e in errors for message in e.messages])
