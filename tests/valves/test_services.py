import logging

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import connection
from pydantic import BaseModel, Field, SecretBytes, SecretStr

from functions.models import Function
from functions.services.functions import function_set_active, function_update
from tests.support.valves import valves_get_global, valves_get_user
from tests.valves.conftest import VALVES_PIPE
from valves.crypto import SecretsDecryptError
from valves.models import FunctionValves, UserValves
from valves.services import (
    SECRET_MASK,
    secret_fields,
    valves_functions_for,
    valves_schema,
    valves_state_global,
    valves_state_user,
    valves_update_global,
    valves_update_user,
)
from valves.spec import describe_valves


def raw_row(table: str, function_id: str) -> tuple[str, str]:
    """Return the (data, secrets) columns of all rows for a function, as the database holds them."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT data, secrets FROM {table} WHERE function_id = %s", [function_id])
        rows = cursor.fetchall()
    return " ".join(str(row[0]) for row in rows), " ".join(str(row[1]) for row in rows)


# Secret field detection


def _password(**kw):
    return Field(default="", json_schema_extra={"input": {"type": "password"}}, **kw)


def _password_callable(schema: dict) -> None:
    schema["input"] = {"type": "password"}


class Detection(BaseModel):
    OPENAI_API_KEY: str = ""
    BOT_TOKEN: str = ""
    password: str = ""
    apikey: str = ""
    client_secret: str | None = None
    SECRET_KEY: str = ""
    credentials: str = ""
    hidden: str = _password()
    hidden_by_callable: str = Field(default="", json_schema_extra=_password_callable)
    secret_str: SecretStr = SecretStr("")
    optional_secret: SecretStr | None = None
    secret_bytes: SecretBytes = SecretBytes(b"")
    max_tokens: int = 10
    TOKEN_LIMIT: str = ""
    api_key_count: int = 0
    tokenizer: str = ""
    keyword: str = ""
    BASE_URL: str = ""


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        pytest.param("OPENAI_API_KEY", True, id="api-key-suffix"),
        pytest.param("BOT_TOKEN", True, id="token-suffix"),
        pytest.param("password", True, id="password"),
        pytest.param("apikey", True, id="apikey-no-underscore"),
        pytest.param("client_secret", True, id="optional-str-secret"),
        pytest.param("SECRET_KEY", True, id="secret-key"),
        pytest.param("credentials", True, id="credentials"),
        pytest.param("hidden", True, id="password-input-hint"),
        pytest.param("hidden_by_callable", True, id="password-hint-from-callable"),
        pytest.param("secret_str", True, id="SecretStr"),
        pytest.param("optional_secret", True, id="Optional-SecretStr"),
        pytest.param("secret_bytes", True, id="SecretBytes"),
        pytest.param("max_tokens", False, id="int-named-like-tokens"),
        pytest.param("TOKEN_LIMIT", False, id="token-prefix"),
        pytest.param("api_key_count", False, id="int-api-key-count"),
        pytest.param("tokenizer", False, id="tokenizer"),
        pytest.param("keyword", False, id="keyword"),
        pytest.param("BASE_URL", False, id="plain-str"),
    ],
)
def test_secret_fields_detects_marked_typed_and_key_like_fields(name, secret):
    assert (name in secret_fields(describe_valves(Detection))) is secret


def test_secret_fields_accepts_the_legacy_extra_keyword_form():
    with pytest.warns(DeprecationWarning):

        class Legacy(BaseModel):
            hidden: str = Field(default="", input={"type": "password"})

    assert secret_fields(describe_valves(Legacy)) == {"hidden"}
    assert secret_fields(None) == set()


# Global valves: storage semantics


@pytest.mark.django_db
def test_update_stores_only_explicit_fields_so_code_defaults_keep_applying(alice, valves_pipe):
    state = valves_update_global(user=alice, function=valves_pipe, values={"MAX_TOKENS": "512"})
    assert FunctionValves.objects.get(function=valves_pipe).data == {"MAX_TOKENS": 512}
    assert state.values == {"MAX_TOKENS": 512} and state.stored and state.has_schema
    valves = valves_get_global(function=valves_pipe)
    assert (valves.MAX_TOKENS, valves.BASE_URL, valves.MODE) == (
        512,
        "https://api.example.com",
        "fast",
    )


@pytest.mark.django_db
def test_update_merges_with_what_is_stored_and_none_means_back_to_default(alice, valves_pipe):
    valves_update_global(user=alice, function=valves_pipe, values={"MAX_TOKENS": 512})
    valves_update_global(user=alice, function=valves_pipe, values={"MODE": "slow"})
    assert valves_state_global(function=valves_pipe).values == {"MAX_TOKENS": 512, "MODE": "slow"}
    valves_update_global(user=alice, function=valves_pipe, values={"MAX_TOKENS": None})
    assert valves_state_global(function=valves_pipe).values == {"MODE": "slow"}
    assert valves_get_global(function=valves_pipe).MAX_TOKENS == 256


@pytest.mark.django_db
def test_update_records_who_changed_the_valves(alice, valves_pipe):
    valves_update_global(user=alice, function=valves_pipe, values={"STREAM": False})
    assert FunctionValves.objects.get(function=valves_pipe).updated_by == alice


@pytest.mark.django_db
def test_invalid_values_are_field_errors_and_change_nothing(alice, valves_pipe):
    valves_update_global(user=alice, function=valves_pipe, values={"MAX_TOKENS": 5})
    with pytest.raises(ValidationError) as info:
        valves_update_global(
            user=alice,
            function=valves_pipe,
            values={
                "MAX_TOKENS": 0,
                "MODE": "warp",
                "BASE_URL": "https://other",
                "OPENAI_API_KEY": "sk-x",
            },
        )
    errors = info.value.message_dict
    assert set(errors) == {"MAX_TOKENS", "MODE"}
    assert "greater than or equal to 1" in errors["MAX_TOKENS"][0]
    row = FunctionValves.objects.get(function=valves_pipe)
    assert (row.data, row.secrets) == ({"MAX_TOKENS": 5}, "")


@pytest.mark.django_db
def test_a_failed_first_update_creates_no_row(alice, valves_pipe):
    with pytest.raises(ValidationError):
        valves_update_global(user=alice, function=valves_pipe, values={"TEMPERATURE": "hot"})
    assert not FunctionValves.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["bob", "anonymous"])
def test_only_staff_update_global_valves(who, bob, valves_pipe):
    from django.contrib.auth.models import AnonymousUser

    user = bob if who == "bob" else AnonymousUser()
    with pytest.raises(PermissionDenied):
        valves_update_global(user=user, function=valves_pipe, values={"STREAM": False})
    assert not FunctionValves.objects.exists()


@pytest.mark.django_db
def test_a_function_without_valves_cannot_be_given_any(alice, bob, bare_pipe):
    with pytest.raises(ValidationError) as info:
        valves_update_global(user=alice, function=bare_pipe, values={"X": 1})
    assert info.value.code == "no_valves"
    with pytest.raises(ValidationError) as info:
        valves_update_user(user=bob, function=bare_pipe, values={"X": 1})
    assert info.value.code == "no_valves"
    assert valves_get_global(function=bare_pipe) is None
    assert valves_get_user(user=bob, function=bare_pipe) is None
    assert valves_schema(function=bare_pipe) is None
    state = valves_state_global(function=bare_pipe)
    assert (state.has_schema, state.stored, state.values, state.errors) == (False, False, {}, {})


# Secrets


@pytest.mark.django_db
def test_secrets_are_encrypted_at_rest_and_never_in_data(alice, valves_pipe):
    valves_update_global(
        user=alice, function=valves_pipe, values={"OPENAI_API_KEY": "sk-live-123", "MAX_TOKENS": 9}
    )
    data, secrets = raw_row("valves_functionvalves", valves_pipe.id)
    assert "sk-live-123" not in data and "sk-live-123" not in secrets
    assert "OPENAI_API_KEY" not in data and secrets
    assert valves_get_global(function=valves_pipe).OPENAI_API_KEY == "sk-live-123"


@pytest.mark.django_db
def test_state_masks_set_secrets_and_says_which_are_set(alice, valves_pipe):
    valves_update_global(user=alice, function=valves_pipe, values={"OPENAI_API_KEY": "sk-1"})
    state = valves_state_global(function=valves_pipe)
    assert state.values == {"OPENAI_API_KEY": SECRET_MASK}
    assert state.secrets_set == {"OPENAI_API_KEY": True}


@pytest.mark.django_db
@pytest.mark.parametrize("kept_by", ["", SECRET_MASK, None], ids=["empty", "mask", "none"])
def test_empty_mask_or_none_keeps_the_stored_secret(kept_by, alice, valves_pipe):
    valves_update_global(user=alice, function=valves_pipe, values={"OPENAI_API_KEY": "sk-1"})
    valves_update_global(
        user=alice, function=valves_pipe, values={"OPENAI_API_KEY": kept_by, "STREAM": False}
    )
    valves = valves_get_global(function=valves_pipe)
    assert (valves.OPENAI_API_KEY, valves.STREAM) == ("sk-1", False)


@pytest.mark.django_db
def test_a_new_secret_replaces_the_old_one_and_clear_removes_it(alice, valves_pipe):
    valves_update_global(user=alice, function=valves_pipe, values={"OPENAI_API_KEY": "sk-1"})
    valves_update_global(user=alice, function=valves_pipe, values={"OPENAI_API_KEY": "sk-2"})
    assert valves_get_global(function=valves_pipe).OPENAI_API_KEY == "sk-2"
    state = valves_update_global(
        user=alice, function=valves_pipe, values={}, clear=["OPENAI_API_KEY"]
    )
    assert state.secrets_set == {"OPENAI_API_KEY": False}
    assert FunctionValves.objects.get(function=valves_pipe).secrets == ""
    assert valves_get_global(function=valves_pipe).OPENAI_API_KEY == ""


@pytest.mark.django_db
def test_clearing_an_unknown_valve_is_a_field_error(alice, valves_pipe):
    with pytest.raises(ValidationError) as info:
        valves_update_global(user=alice, function=valves_pipe, values={}, clear=["NOPE"])
    assert "NOPE" in info.value.message_dict


SECRETSTR_PIPE = """
from pydantic import BaseModel, SecretStr

class Pipe:
    class Valves(BaseModel):
        KEY: SecretStr = SecretStr("")
        NAME: str = "n"

    def pipe(self, body):
        return "ok"
"""


@pytest.mark.django_db
def test_secretstr_values_are_stored_in_plain_inside_the_token_only(alice, make_function):
    function = make_function("secretstr_pipe", content=SECRETSTR_PIPE)
    valves_update_global(user=alice, function=function, values={"KEY": "sk-s"})
    data, secrets = raw_row("valves_functionvalves", function.id)
    assert "sk-s" not in secrets and "KEY" not in data
    assert valves_get_global(function=function).KEY.get_secret_value() == "sk-s"


@pytest.mark.django_db
def test_secrets_survive_key_rotation(alice, valves_pipe, settings):
    valves_update_global(user=alice, function=valves_pipe, values={"OPENAI_API_KEY": "sk-1"})
    settings.FNPLATFORM_SECRETS_KEY = (
        f"{Fernet.generate_key().decode()},{settings.FNPLATFORM_SECRETS_KEY}"
    )
    assert valves_get_global(function=valves_pipe).OPENAI_API_KEY == "sk-1"


@pytest.mark.django_db
def test_a_lost_key_is_reported_and_clearing_the_secrets_recovers(alice, valves_pipe, settings):
    valves_update_global(
        user=alice, function=valves_pipe, values={"OPENAI_API_KEY": "sk-1", "MAX_TOKENS": 3}
    )
    settings.FNPLATFORM_SECRETS_KEY = Fernet.generate_key().decode()

    state = valves_state_global(function=valves_pipe)
    assert "FNPLATFORM_SECRETS_KEY" in state.errors[NON_FIELD_ERRORS][0]
    assert state.values == {"MAX_TOKENS": 3}
    with pytest.raises(ValidationError, match="FNPLATFORM_SECRETS_KEY"):
        valves_get_global(function=valves_pipe)
    with pytest.raises(SecretsDecryptError):
        valves_update_global(user=alice, function=valves_pipe, values={"MAX_TOKENS": 4})

    valves_update_global(
        user=alice, function=valves_pipe, values={"MAX_TOKENS": 4}, clear=["OPENAI_API_KEY"]
    )
    assert valves_state_global(function=valves_pipe).errors == {}


# Stored values that no longer fit


@pytest.mark.django_db
def test_values_that_no_longer_fit_a_changed_schema_are_reported_not_raised(
    alice, bob, valves_pipe
):
    valves_update_global(user=alice, function=valves_pipe, values={"MODE": "slow", "MAX_TOKENS": 9})
    valves_update_user(user=bob, function=valves_pipe, values={"GREETING": "Hi"})
    changed = VALVES_PIPE.replace('Literal["fast", "slow"]', 'Literal["fast", "turbo"]').replace(
        'GREETING: str = "Hello"', "GREETING: int = 1"
    )
    function = function_update(user=alice, function=valves_pipe, content=changed)

    state = valves_state_global(function=function, check=True)
    assert list(state.errors) == ["MODE"]
    assert state.values == {"MODE": "slow", "MAX_TOKENS": 9}
    assert valves_state_global(function=function).errors == {}  # not asked: no worker call
    user_state = valves_state_user(user=bob, function=function, check=True)
    assert list(user_state.errors) == ["GREETING"]

    with pytest.raises(ValidationError) as info:
        valves_get_global(function=function)
    assert "valves_pipe" in info.value.messages[0] and "MODE" in info.value.messages[0]
    assert info.value.code == "invalid_stored_valves"


@pytest.mark.django_db
def test_bad_user_valves_fall_back_to_defaults_with_a_warning(alice, bob, valves_pipe, caplog):
    UserValves.objects.create(user=bob, function=valves_pipe, data={"SHOUT": "loudly"})
    with caplog.at_level(logging.WARNING, logger="functions.workers.worker"):
        valves = valves_get_user(user=bob, function=valves_pipe)
    assert valves.SHOUT is False
    assert "SHOUT" in caplog.text
    assert list(valves_state_user(user=bob, function=valves_pipe, check=True).errors) == ["SHOUT"]


@pytest.mark.django_db
def test_fixing_the_bad_field_makes_the_update_succeed(alice, valves_pipe):
    FunctionValves.objects.create(function=valves_pipe, data={"MODE": "warp", "STREAM": False})
    with pytest.raises(ValidationError) as info:
        valves_update_global(user=alice, function=valves_pipe, values={"STREAM": True})
    assert list(info.value.message_dict) == ["MODE"]
    state = valves_update_global(user=alice, function=valves_pipe, values={"MODE": None})
    assert state.values == {"STREAM": False}


@pytest.mark.django_db
def test_a_function_whose_code_no_longer_loads_still_has_a_state(alice, valves_pipe):
    valves_update_global(user=alice, function=valves_pipe, values={"MAX_TOKENS": 9})
    Function.objects.filter(pk=valves_pipe.pk).update(content="class Pipe:\n    def pipe(self)\n")
    function = Function.objects.get(pk=valves_pipe.pk)
    state = valves_state_global(function=function)
    assert state.values == {"MAX_TOKENS": 9} and not state.has_schema
    assert "SyntaxError" in state.errors[NON_FIELD_ERRORS][0]


# Schema


@pytest.mark.django_db
def test_schema_masks_secret_defaults_taken_from_the_environment(monkeypatch, make_function):
    monkeypatch.setenv("VALVES_TEST_KEY", "sk-from-env")
    function = make_function("valves_pipe", content=VALVES_PIPE)
    schema = valves_schema(function=function)
    assert "sk-from-env" not in str(schema)
    assert schema["properties"]["OPENAI_API_KEY"]["default"] == SECRET_MASK
    assert schema["properties"]["MAX_TOKENS"]["default"] == 256
    # The code default itself still applies at run time.
    assert valves_get_global(function=function).OPENAI_API_KEY == "sk-from-env"


@pytest.mark.django_db
def test_an_empty_secret_default_is_left_empty(valves_pipe, monkeypatch):
    monkeypatch.delenv("VALVES_TEST_KEY", raising=False)
    assert valves_schema(function=valves_pipe)["properties"]["OPENAI_API_KEY"]["default"] == ""


@pytest.mark.django_db
def test_user_schema_resolves_dynamic_options_with_the_viewer(bob, valves_pipe):
    schema = valves_schema(function=valves_pipe, user=True, viewer=bob)
    options = schema["properties"]["LANGUAGE"]["input"]["options"]
    assert [option["value"] for option in options] == ["en", "fr", "x-bob"]
    anonymous = valves_schema(function=valves_pipe, user=True)
    assert len(anonymous["properties"]["LANGUAGE"]["input"]["options"]) == 2


BROKEN_OPTIONS_PIPE = """
from pydantic import BaseModel, Field

class Pipe:
    class Valves(BaseModel):
        MODEL: str = Field(
            default="a", json_schema_extra={"input": {"type": "select", "options": "models"}}
        )
        OTHER: str = Field(
            default="a", json_schema_extra={"input": {"type": "select", "options": "missing"}}
        )

        @staticmethod
        def models():
            raise RuntimeError("upstream down")

    def pipe(self, body):
        return "ok"
"""


@pytest.mark.django_db
def test_failing_or_missing_option_methods_give_empty_options_and_a_note(make_function):
    function = make_function("broken_options", content=BROKEN_OPTIONS_PIPE)
    properties = valves_schema(function=function)["properties"]
    assert properties["MODEL"]["input"]["options"] == []
    assert "upstream down" in properties["MODEL"]["input"]["options_error"]
    assert properties["OTHER"]["input"]["options"] == []
    # Resolving works on a copy: the plugin's own field definition is unchanged.
    again = valves_schema(function=function)["properties"]["MODEL"]["input"]
    assert again["options"] == []


# User valves


@pytest.mark.django_db
def test_users_set_their_own_valves_independently(bob, outsider, valves_pipe):
    valves_update_user(
        user=bob, function=valves_pipe, values={"GREETING": "Yo", "PERSONAL_TOKEN": "t-1"}
    )
    valves_update_user(user=outsider, function=valves_pipe, values={"SHOUT": True})
    assert valves_get_user(user=bob, function=valves_pipe).GREETING == "Yo"
    assert valves_get_user(user=bob, function=valves_pipe).PERSONAL_TOKEN == "t-1"
    assert valves_get_user(user=outsider, function=valves_pipe).GREETING == "Hello"
    assert valves_state_user(user=outsider, function=valves_pipe).values == {"SHOUT": True}
    assert valves_state_user(user=bob, function=valves_pipe).values == {
        "GREETING": "Yo",
        "PERSONAL_TOKEN": SECRET_MASK,
    }
    data, secrets = raw_row("valves_uservalves", valves_pipe.id)
    assert "t-1" not in data + secrets


@pytest.mark.django_db
def test_users_cannot_set_valves_of_inactive_functions(alice, bob, valves_pipe):
    function = function_set_active(user=alice, function=valves_pipe, active=False)
    with pytest.raises(PermissionDenied):
        valves_update_user(user=bob, function=function, values={"GREETING": "Yo"})
    # Staff may configure functions before switching them on.
    valves_update_user(user=alice, function=function, values={"GREETING": "Yo"})


@pytest.mark.django_db
def test_anonymous_users_get_defaults_and_cannot_save(valves_pipe):
    from django.contrib.auth.models import AnonymousUser

    assert valves_get_user(user=AnonymousUser(), function=valves_pipe).GREETING == "Hello"
    assert valves_state_user(user=AnonymousUser(), function=valves_pipe).stored is False
    with pytest.raises(PermissionDenied):
        valves_update_user(user=AnonymousUser(), function=valves_pipe, values={"GREETING": "x"})


@pytest.mark.django_db
def test_user_valve_errors_are_field_errors(bob, valves_pipe):
    with pytest.raises(ValidationError) as info:
        valves_update_user(user=bob, function=valves_pipe, values={"SHOUT": "loudly"})
    assert list(info.value.message_dict) == ["SHOUT"]
    assert not UserValves.objects.exists()


@pytest.mark.django_db
def test_functions_with_user_valves_lists_only_usable_ones(
    alice, bob, valves_pipe, bare_pipe, make_function
):
    hidden = make_function("hidden_pipe", content=VALVES_PIPE, is_active=False)
    assert list(valves_functions_for(user=bob)) == [valves_pipe]
    assert set(valves_functions_for(user=alice)) == {valves_pipe, hidden}


@pytest.mark.django_db
def test_a_quarantined_functions_valves_are_not_checked_by_its_code(alice, valves_pipe):
    from django.utils import timezone

    from functions.models import FunctionHealth

    FunctionHealth.objects.create(
        function=valves_pipe, quarantined_at=timezone.now(), quarantine_reason="it crashed"
    )
    with pytest.raises(ValidationError, match="quarantined"):
        valves_update_global(user=alice, function=valves_pipe, values={"MAX_TOKENS": 3})
    assert not FunctionValves.objects.filter(function=valves_pipe).exists()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(["not", "a", "dict"], {}, id="list"),
        pytest.param({"errors": {"A": "bad"}}, {"errors": {"A": ["bad"]}}, id="errors-str"),
        pytest.param({"data": [1]}, {}, id="data-list"),
        pytest.param(
            {"options": {"M": [["a", "A"], "junk", ["b", 2, 3]], "N": {"error": "x"}}},
            {"options": {"M": [["a", "A"]], "N": {"error": "x"}}},
            id="options",
        ),
    ],
)
def test_what_a_worker_answers_is_checked_before_use(answer, expected):
    from valves.services import _checked_answer

    assert _checked_answer(answer) == expected
