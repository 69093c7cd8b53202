"""The /api/v1/functions/id/{id}/valves paths, as staff, an ordinary user and anonymously."""

import json

import pytest
from django.test import Client

from functions.services.functions import function_set_active
from tests.support.payloads import assert_refused_or_accepted, typed_cases
from tests.support.personas import matrix_cases
from tests.support.valves import valves_get_global, valves_get_user
from valves.services import SECRET_MASK

pytestmark = pytest.mark.django_db

BASE = "/api/v1/functions/id"


def post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


@pytest.fixture
def anon():
    return Client()


# Global valves (staff only)


def test_global_valves_are_null_until_stored_then_the_stored_values(alice_client, valves_pipe):
    url = f"{BASE}/valves_pipe/valves"
    response = alice_client.get(url)
    assert response.status_code == 200 and response.json() is None
    post(alice_client, f"{url}/update", {"MAX_TOKENS": 100})
    assert alice_client.get(url).json() == {"MAX_TOKENS": 100}


def test_update_returns_the_stored_values_with_secrets_masked(alice_client, valves_pipe):
    response = post(
        alice_client,
        f"{BASE}/valves_pipe/valves/update",
        {"OPENAI_API_KEY": "sk-9", "MODE": "slow", "STREAM": None},
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"OPENAI_API_KEY": SECRET_MASK, "MODE": "slow"}
    assert "sk-9" not in alice_client.get(f"{BASE}/valves_pipe/valves").content.decode()
    assert valves_get_global(function=valves_pipe).OPENAI_API_KEY == "sk-9"


def test_update_keeps_a_masked_secret_and_clears_on_request(alice_client, valves_pipe):
    url = f"{BASE}/valves_pipe/valves/update"
    post(alice_client, url, {"OPENAI_API_KEY": "sk-9"})
    post(alice_client, url, {"OPENAI_API_KEY": SECRET_MASK, "MAX_TOKENS": 7})
    assert valves_get_global(function=valves_pipe).OPENAI_API_KEY == "sk-9"
    response = post(alice_client, url, {"__clear__": ["OPENAI_API_KEY"]})
    assert response.json() == {"MAX_TOKENS": 7}
    assert valves_get_global(function=valves_pipe).OPENAI_API_KEY == ""


def test_invalid_update_is_400_with_field_errors(alice_client, valves_pipe):
    response = post(alice_client, f"{BASE}/valves_pipe/valves/update", {"MAX_TOKENS": "lots"})
    assert response.status_code == 400
    body = response.json()
    assert list(body["errors"]) == ["MAX_TOKENS"] and "MAX_TOKENS" in body["detail"]


def test_update_of_a_function_without_valves_is_400(alice_client, bare_pipe):
    response = post(alice_client, f"{BASE}/bare_pipe/valves/update", {"X": 1})
    assert response.status_code == 400
    assert response.json()["detail"] == "This function has no Valves."


def test_spec_is_the_schema_with_secret_defaults_masked(alice_client, monkeypatch, make_function):
    from tests.valves.conftest import VALVES_PIPE

    monkeypatch.setenv("VALVES_TEST_KEY", "sk-env")
    make_function("valves_pipe", content=VALVES_PIPE)
    response = alice_client.get(f"{BASE}/valves_pipe/valves/spec")
    assert response.status_code == 200
    assert "sk-env" not in response.content.decode()
    assert response.json()["properties"]["OPENAI_API_KEY"]["default"] == SECRET_MASK


def test_spec_is_null_without_valves(alice_client, bare_pipe):
    assert alice_client.get(f"{BASE}/bare_pipe/valves/spec").json() is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("get", "valves", id="get"),
        pytest.param("get", "valves/spec", id="spec"),
        pytest.param("post", "valves/update", id="update"),
    ],
)
def test_global_valves_are_staff_only(method, path, alice_client, bob_client, anon, valves_pipe):
    def call(client, function_id):
        url = f"{BASE}/{function_id}/{path}"
        return post(client, url, {"MODE": "slow"}) if method == "post" else client.get(url)

    assert call(alice_client, "valves_pipe").status_code == 200
    assert call(alice_client, "missing").status_code == 404
    # Staff is checked first, so bob cannot tell existing ids from missing ones.
    assert call(bob_client, "valves_pipe").status_code == 403
    assert call(bob_client, "missing").status_code == 403
    assert call(anon, "valves_pipe").status_code == 401


# User valves (any signed-in user, usable functions only)


def test_user_valves_are_per_user(bob_client, alice_client, bob, valves_pipe):
    url = f"{BASE}/valves_pipe/valves/user"
    assert bob_client.get(url).json() is None
    response = post(bob_client, f"{url}/update", {"GREETING": "Yo", "PERSONAL_TOKEN": "t-1"})
    assert response.status_code == 200, response.content
    assert response.json() == {"GREETING": "Yo", "PERSONAL_TOKEN": SECRET_MASK}
    assert bob_client.get(url).json() == {"GREETING": "Yo", "PERSONAL_TOKEN": SECRET_MASK}
    assert alice_client.get(url).json() is None
    assert valves_get_user(user=bob, function=valves_pipe).PERSONAL_TOKEN == "t-1"


def test_user_spec_resolves_options_for_the_caller(bob_client, valves_pipe):
    response = bob_client.get(f"{BASE}/valves_pipe/valves/user/spec")
    assert response.status_code == 200
    options = response.json()["properties"]["LANGUAGE"]["input"]["options"]
    assert options[-1] == {"value": "x-bob", "label": "Mine"}


def test_user_spec_is_null_without_user_valves(bob_client, bare_pipe):
    assert bob_client.get(f"{BASE}/bare_pipe/valves/user/spec").json() is None


def test_invalid_user_update_is_400(bob_client, valves_pipe):
    response = post(bob_client, f"{BASE}/valves_pipe/valves/user/update", {"SHOUT": "loudly"})
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["SHOUT"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("get", "valves/user", id="get"),
        pytest.param("get", "valves/user/spec", id="spec"),
        pytest.param("post", "valves/user/update", id="update"),
    ],
)
def test_user_valves_need_a_usable_function(
    method, path, alice, alice_client, bob_client, anon, valves_pipe
):
    def call(client, function_id):
        url = f"{BASE}/{function_id}/{path}"
        return post(client, url, {"GREETING": "Hi"}) if method == "post" else client.get(url)

    assert call(bob_client, "valves_pipe").status_code == 200
    assert call(bob_client, "missing").status_code == 404
    assert call(anon, "valves_pipe").status_code == 401
    function_set_active(user=alice, function=valves_pipe, active=False)
    assert call(bob_client, "valves_pipe").status_code == 403
    assert call(alice_client, "valves_pipe").status_code == 200


def test_a_valve_called_clear_is_a_value_not_the_clear_list(alice_client, make_function):
    source = (
        "from pydantic import BaseModel\nclass Pipe:\n    class Valves(BaseModel):\n"
        "        clear: bool = False\n    def pipe(self, body):\n        return 'x'\n"
    )
    make_function("clearing", content=source)
    response = post(alice_client, f"{BASE}/clearing/valves/update", {"clear": True})
    assert response.status_code == 200 and response.json() == {"clear": True}


def test_a_body_that_is_not_an_object_is_422(alice_client, valves_pipe):
    assert post(alice_client, f"{BASE}/valves_pipe/valves/update", [1]).status_code == 422


# The permission matrix: global valves ask for the admin's valves permissions.


@pytest.fixture
def as_persona(persona_login):
    """Return a client logged in as one of PERSONAS."""
    return persona_login("functions.view_function", "valves.view_functionvalves")


# (method, path, expected status for superuser, viewer, bare staff, plain user)
MATRIX = [
    ("get", "/valves", 200, 200, 403, 403),
    ("get", "/valves/spec", 200, 200, 403, 403),
    ("post", "/valves/update", 200, 403, 403, 403),
    # A user's own valves stay open to anyone who may use the (active) function.
    ("get", "/valves/user", 200, 200, 200, 200),
    ("post", "/valves/user/update", 200, 200, 200, 200),
]
CASES = matrix_cases(MATRIX)


@pytest.mark.parametrize(("method", "path", "persona", "expected"), CASES)
def test_permission_matrix(as_persona, valves_pipe, method, path, persona, expected):
    client = as_persona(persona)
    url = f"{BASE}/valves_pipe{path}"
    body = {"GREETING": "Hi"} if "user" in path else {"MAX_TOKENS": 7}
    response = post(client, url, body) if method == "post" else client.get(url)
    assert response.status_code == expected, response.content
    if expected == 403:
        assert valves_get_global(function=valves_pipe).MAX_TOKENS == 256
    if expected == 403 and persona != "user":
        assert "permission" in response.json()["detail"]


def test_valves_view_permission_alone_does_not_update(as_persona, valves_pipe):
    response = post(as_persona("viewer"), f"{BASE}/valves_pipe/valves/update", {"MAX_TOKENS": 7})
    assert response.status_code == 403
    assert "valves.change_functionvalves" in response.json()["detail"]


# Wrong-typed bodies are refused with a 4xx, never a 500.

# The plugin's own pydantic class decides, in lax mode: it takes true for an int.
NULLABLE_INT, NULLABLE_BOOL, NULLABLE_STR = (
    {"int", "bool", "null"},
    {"bool", "null"},
    {"string", "null"},
)
GLOBAL_BODY = {"MAX_TOKENS": 9, "STREAM": True, "OPENAI_API_KEY": "sk-1", "__clear__": []}
USER_BODY = {"GREETING": "Hi", "SHOUT": True, "__clear__": []}
TYPED_BODIES = [
    *typed_cases(
        GLOBAL_BODY,
        {
            "MAX_TOKENS": NULLABLE_INT,
            "STREAM": NULLABLE_BOOL,
            "OPENAI_API_KEY": NULLABLE_STR,
            "__clear__": {"array"},
        },
        "/valves/update ",
    ),
    *typed_cases(
        USER_BODY,
        {"GREETING": NULLABLE_STR, "SHOUT": NULLABLE_BOOL, "__clear__": {"array"}},
        "/valves/user/update ",
    ),
]


@pytest.mark.parametrize(("body", "must_refuse"), TYPED_BODIES)
def test_wrong_typed_bodies_are_a_4xx_never_a_500(
    alice_client, valves_pipe, request, body, must_refuse
):
    path = request.node.callspec.id.split(" ", 1)[0]
    response = post(alice_client, f"{BASE}/valves_pipe{path}", body)
    assert_refused_or_accepted(response, must_refuse)


# A lone surrogate is refused before the valves service sees it.


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"GREETING": "hi \\ud800"}', "GREETING"),
        ('{"GREETING": ["\\udfff"]}', "GREETING.0"),
        ('{"\\ud800": "x"}', "\\ud800"),
    ],
)
def test_user_valves_with_a_lone_surrogate_are_a_400_and_nothing_is_stored(
    bob_client, bob, valves_pipe, raw, field
):
    from valves.models import UserValves

    response = bob_client.post(
        f"{BASE}/valves_pipe/valves/user/update", raw, content_type="application/json"
    )

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert not UserValves.objects.filter(user=bob).exists()
    assert valves_get_user(user=bob, function=valves_pipe).GREETING == "Hello"
