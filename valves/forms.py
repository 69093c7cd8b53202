"""Django forms built from a plugin's valves spec (valves.spec, from its load report).

Every field is optional: empty means "use the code default" (None to the
service). Secret fields render as password inputs that never show the stored
value; leaving one empty keeps it, and a `<name>__clear` checkbox removes it.
Which Django field a valve gets was decided where the plugin's class was read (the
spec's `kind`); `_BUILDERS` maps each kind to a builder.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from valves.services import ValvesState
from valves.spec import SECRET_MASK

CLEAR_SUFFIX = "__clear"
MAX_DEFAULT_CHARS = 80


@dataclass(frozen=True)
class ValveField:
    """What the builders need to know about one valve: its spec and this form's state."""

    spec: dict[str, Any]
    is_set: bool
    defaults_visible: bool
    resolved_options: Any = None  # dynamic options from the worker, if any

    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def secret(self) -> bool:
        return bool(self.spec.get("secret"))

    @property
    def default_text(self) -> str:
        return _display(self.spec.get("default"), secret=self.secret)

    @property
    def options(self) -> list[tuple[Any, str]]:
        """Return (value, label) pairs: resolved dynamic options, else the static ones."""
        options = self.resolved_options
        if not isinstance(options, list):
            options = self.spec.get("options") or []
        return [(value, str(label)) for value, label in options]


class ValvesForm(forms.Form):
    """Base of the generated forms; the class attributes drive form_values()."""

    valve_names: tuple[str, ...] = ()
    secret_names: frozenset[str] = frozenset()


def field_kind(field: ValveField) -> str:
    """Return the form kind of a valve, as its spec says (json for a kind we don't know)."""
    kind = field.spec.get("kind") or "json"
    if field.spec.get("options_method") and field.resolved_options is None:
        return "str"  # its options were not asked of the worker: free text
    return kind if kind in _BUILDERS else "json"


def _common(field: ValveField, *extra_help: str) -> dict[str, Any]:
    parts = [field.spec.get("description") or "", *extra_help]
    if isinstance(field.resolved_options, dict):
        parts.append(f"Options unavailable: {field.resolved_options.get('error', '')}")
    if field.spec.get("required"):
        parts.append("Required.")
    elif field.defaults_visible:
        parts.append(f"Default: {field.default_text}")
    # Escaped here, so templates that render help_text with |safe (Django's own) stay safe.
    help_text: SafeString = mark_safe(" ".join(escape(part) for part in parts if part))
    label = field.spec.get("title") or field.name
    return {"required": False, "label": label, "help_text": help_text}


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
    spec: dict[str, Any],
    *,
    secrets_set: dict[str, bool] | None = None,
    defaults_visible: bool = True,
    options: dict[str, Any] | None = None,
) -> type[ValvesForm]:
    """Return a Form class for a valves spec.

    Pass `options` (from valves_options) to use the worker's resolved dynamic options.
    """
    secrets_set, options = secrets_set or {}, options or {}
    attrs: dict[str, Any] = {}
    secret_names = set()
    for entry in spec["fields"]:
        name = entry["name"]
        field = ValveField(entry, bool(secrets_set.get(name)), defaults_visible, options.get(name))
        attrs[name] = _BUILDERS[field_kind(field)](field)
        if field.secret:
            secret_names.add(name)
            if field.is_set:
                attrs[name + CLEAR_SUFFIX] = forms.BooleanField(
                    required=False, label="Clear stored value"
                )
    attrs["valve_names"] = tuple(entry["name"] for entry in spec["fields"])
    attrs["secret_names"] = frozenset(secret_names)
    return type(f"{spec.get('class', 'Valves')}Form", (ValvesForm,), attrs)


def _display(value: Any, *, secret: bool = False) -> str:
    """Return a short human text for a default value, masking secrets."""
    if secret:
        return SECRET_MASK if value not in (None, "", b"") else "empty"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "Yes" if value else "No"
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
