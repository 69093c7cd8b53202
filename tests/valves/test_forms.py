from enum import Enum
from typing import Literal

import pytest
from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from pydantic import BaseModel, Field, SecretStr

from valves.forms import apply_field_errors, form_initial, form_values
from valves.forms import form_class_for as form_for_spec
from valves.services import SECRET_MASK, ValvesState
from valves.spec import describe_valves


class Color(Enum):
    RED = "red"
    BLUE = "blue"


class Every(BaseModel):
    NAME: str = Field(default="bot", title="Bot name", description="Shown in <b>chats</b>")
    COUNT: int = 3
    RATIO: float = 0.5
    ENABLED: bool = True
    MODE: Literal["fast", "slow"] = "fast"
    LEVEL: Literal[1, 2, 3] = 1
    COLOR: Color = Color.RED
    API_KEY: str = Field(default="sk-default", description="Your key")
    HIDDEN: str = Field(default="", json_schema_extra={"input": {"type": "password"}})
    PROMPT: str = Field(default="Be nice", json_schema_extra={"input": {"type": "textarea"}})
    MODEL: str = Field(
        default="a",
        json_schema_extra={
            "input": {"type": "select", "options": ["a", {"value": "b", "label": "Bee"}]}
        },
    )
    TAGS: list[str] = Field(
        default_factory=list,
        json_schema_extra={"input": {"type": "multiselect", "options": ["x", "y", "z"]}},
    )
    TOKEN: SecretStr = SecretStr("")
    STOP: list[str] = ["\n"]
    HEADERS: dict[str, str] = {}
    LIMIT: int | None = None
    DYNAMIC: str = Field(
        default="m1", json_schema_extra={"input": {"type": "select", "options": "list_models"}}
    )


def form_class_for(model: type[BaseModel], **kwargs):
    """The form of a valves class, built as the server builds it: from the class's spec."""
    return form_for_spec(describe_valves(model), **kwargs)


def fields(**kwargs) -> dict[str, forms.Field]:
    return form_class_for(Every, **kwargs)().fields


@pytest.mark.parametrize(
    ("name", "field_type", "widget_type"),
    [
        pytest.param("NAME", forms.CharField, forms.TextInput, id="str"),
        pytest.param("COUNT", forms.IntegerField, forms.NumberInput, id="int"),
        pytest.param("RATIO", forms.FloatField, forms.NumberInput, id="float"),
        pytest.param("ENABLED", forms.TypedChoiceField, forms.Select, id="bool"),
        pytest.param("MODE", forms.TypedChoiceField, forms.Select, id="literal"),
        pytest.param("COLOR", forms.TypedChoiceField, forms.Select, id="enum"),
        pytest.param("API_KEY", forms.CharField, forms.PasswordInput, id="key-like-name"),
        pytest.param("HIDDEN", forms.CharField, forms.PasswordInput, id="password-hint"),
        pytest.param("PROMPT", forms.CharField, forms.Textarea, id="textarea-hint"),
        pytest.param("MODEL", forms.TypedChoiceField, forms.Select, id="select-options"),
        pytest.param(
            "TAGS", forms.TypedMultipleChoiceField, forms.SelectMultiple, id="multiselect"
        ),
        pytest.param("TOKEN", forms.CharField, forms.PasswordInput, id="SecretStr"),
        pytest.param("STOP", forms.JSONField, forms.Textarea, id="list"),
        pytest.param("HEADERS", forms.JSONField, forms.Textarea, id="dict"),
        pytest.param("LIMIT", forms.IntegerField, forms.NumberInput, id="Optional-int"),
        pytest.param("DYNAMIC", forms.CharField, forms.TextInput, id="unresolved-options-as-str"),
    ],
)
def test_each_valve_type_gets_its_form_field(name, field_type, widget_type):
    field = fields()[name]
    assert type(field) is field_type
    assert type(field.widget) is widget_type
    assert field.required is False


def test_labels_come_from_the_title_or_the_name():
    assert fields()["NAME"].label == "Bot name"
    assert fields()["COUNT"].label == "COUNT"


def test_help_text_shows_the_escaped_description_and_the_default():
    help_text = fields()["NAME"].help_text
    assert "Shown in &lt;b&gt;chats&lt;/b&gt;" in help_text
    assert "Default: bot" in help_text
    assert "Default: 3" in fields()["COUNT"].help_text
    assert "Default: [&quot;\\n&quot;]" in fields()["STOP"].help_text
    assert "Default" not in fields(defaults_visible=False)["COUNT"].help_text


def test_secret_defaults_are_masked_in_help_text():
    help_text = fields()["API_KEY"].help_text
    assert "sk-default" not in help_text
    assert f"Default: {SECRET_MASK}" in help_text
    assert "Default: empty" in fields()["HIDDEN"].help_text


def test_required_valves_say_so():
    class Needs(BaseModel):
        URL: str

    assert "Required." in form_class_for(Needs)().fields["URL"].help_text


def test_bool_offers_default_yes_and_no():
    field = fields()["ENABLED"]
    assert field.choices == [("", "Default (Yes)"), ("True", "Yes"), ("False", "No")]
    assert [field.clean(v) for v in ("True", "False", "")] == [True, False, None]


def test_choices_offer_the_default_first_and_keep_value_types():
    assert fields()["MODE"].choices[0] == ("", "Default (fast)")
    assert fields()["LEVEL"].clean("2") == 2
    assert fields()["COLOR"].choices == [("", "Default (red)"), ("red", "red"), ("blue", "blue")]
    assert fields()["COLOR"].clean("blue") == "blue"
    assert fields()["MODEL"].choices == [("", "Default (a)"), ("a", "a"), ("b", "Bee")]
    with pytest.raises(ValidationError):
        fields()["MODE"].clean("warp")


def test_multiselect_choices_come_from_the_options():
    field = fields()["TAGS"]
    assert field.choices == [("x", "x"), ("y", "y"), ("z", "z")]
    assert field.clean(["x", "z"]) == ["x", "z"]


def test_resolved_schema_options_turn_a_method_name_into_a_select():
    options = {"DYNAMIC": [["m2", "M2"]]}
    field = form_class_for(Every, options=options)().fields["DYNAMIC"]
    assert field.choices == [("", "Default (m1)"), ("m2", "M2")]


def test_password_fields_never_render_a_value_and_say_whether_one_is_set():
    form_class = form_class_for(Every, secrets_set={"API_KEY": True})
    form = form_class(initial={"API_KEY": "sk-should-not-show"})
    assert "sk-should-not-show" not in str(form["API_KEY"])
    assert "Set — leave empty to keep." in form.fields["API_KEY"].help_text
    assert "Not set." in form.fields["HIDDEN"].help_text


def test_a_clear_checkbox_is_offered_only_for_stored_secrets():
    names = set(form_class_for(Every, secrets_set={"API_KEY": True, "TOKEN": False})().fields)
    assert "API_KEY__clear" in names
    assert "TOKEN__clear" not in names and "HIDDEN__clear" not in names
    assert form_class_for(Every).secret_names == {"API_KEY", "HIDDEN", "TOKEN"}


def test_form_values_turns_empty_inputs_into_none_and_collects_clears():
    form_class = form_class_for(Every, secrets_set={"API_KEY": True})
    form = form_class(
        {
            "NAME": "",
            "COUNT": "7",
            "ENABLED": "False",
            "MODE": "",
            "STOP": '["END"]',
            "HEADERS": "",
            "API_KEY": "",
            "API_KEY__clear": "on",
            "TOKEN": "tok-1",
        }
    )
    assert form.is_valid(), form.errors
    values, clear = form_values(form)
    assert clear == ["API_KEY"]
    assert values["COUNT"] == 7 and values["ENABLED"] is False and values["STOP"] == ["END"]
    assert values["TOKEN"] == "tok-1"
    for name in ("NAME", "MODE", "HEADERS", "API_KEY", "TAGS", "LIMIT"):
        assert values[name] is None, name


def test_invalid_input_is_a_form_error():
    form = form_class_for(Every)({"COUNT": "many", "STOP": "{not json"})
    assert not form.is_valid()
    assert set(form.errors) == {"COUNT", "STOP"}


def test_form_initial_leaves_secrets_out_and_selects_stored_choices():
    state = ValvesState(
        values={"ENABLED": False, "LEVEL": 2, "API_KEY": SECRET_MASK, "STOP": ["x"]},
        secrets_set={"API_KEY": True, "HIDDEN": False, "TOKEN": False},
        has_schema=True,
        stored=True,
    )
    initial = form_initial(state)
    assert initial == {"ENABLED": False, "LEVEL": 2, "STOP": ["x"]}
    form = form_class_for(Every, secrets_set=state.secrets_set)(initial=initial)
    assert '<option value="False" selected>' in str(form["ENABLED"])
    assert '<option value="2" selected>' in str(form["LEVEL"])
    assert "[&quot;x&quot;]" in str(form["STOP"])


def test_apply_field_errors_puts_service_errors_where_they_belong():
    form = form_class_for(Every)({})
    assert form.is_valid()
    apply_field_errors(
        form,
        ValidationError(
            {"COUNT": ["too big"], NON_FIELD_ERRORS: ["broken"], "GONE": ["old valve"]}
        ),
    )
    assert form.errors["COUNT"] == ["too big"]
    assert form.non_field_errors() == ["broken", "GONE: old valve"]

    other = form_class_for(Every)({})
    assert other.is_valid()
    apply_field_errors(other, ValidationError("This function has no UserValves."))
    assert other.non_field_errors() == ["This function has no UserValves."]


def test_text_values_keep_their_surrounding_spaces():
    form = form_class_for(Every)({"NAME": "echo: ", "PROMPT": "  indented\n"})
    assert form.is_valid(), form.errors
    values, _ = form_values(form)
    assert values["NAME"] == "echo: "
    assert values["PROMPT"] == "  indented\n"
