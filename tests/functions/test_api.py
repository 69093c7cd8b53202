"""The /api/v1/functions/ paths, called as staff, an ordinary user and anonymously."""

import json

import pytest
from django.test import Client

from functions.models import Function
from tests.support.payloads import assert_refused_or_accepted, typed_cases
from tests.support.personas import matrix_cases

pytestmark = pytest.mark.django_db

BASE = "/api/v1/functions"
PIPE = '"""\ntitle: Api Pipe\n"""\nclass Pipe:\n    def pipe(self, body):\n        return "ok"\n'
PIPE_V2 = PIPE.replace('"ok"', '"ok2"')


def post(client, path, body=None):
    return client.post(path, json.dumps(body or {}), content_type="application/json")


@pytest.fixture
def fn(alice):
    from functions.services.functions import function_create

    return function_create(user=alice, id="api_pipe", content=PIPE)


@pytest.fixture
def anon():
    return Client()


def test_create_returns_the_function_response(alice_client):
    response = post(
        alice_client,
        f"{BASE}/create",
        {"id": "new_pipe", "name": "New", "content": PIPE, "meta": {"description": "d"}},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == "new_pipe" and body["type"] == "pipe" and body["name"] == "New"
    assert body["meta"]["description"] == "d"
    assert body["meta"]["manifest"] == {"title": "Api Pipe"}
    assert body["is_active"] is False and "content" not in body
    assert isinstance(body["created_at"], int)


def test_create_with_broken_code_is_400_with_the_exact_error(alice_client):
    response = post(
        alice_client,
        f"{BASE}/create",
        {"id": "bad", "name": "Bad", "content": "x = 1\nclass Pipe(:\n"},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith("SyntaxError at line 2:")
    assert body["error"]["type"] == "SyntaxError" and body["error"]["line"] == 2
    assert not Function.objects.exists()


def test_create_with_taken_id_is_400(alice_client, fn):
    response = post(
        alice_client, f"{BASE}/create", {"id": "api_pipe", "name": "x", "content": PIPE}
    )
    assert response.status_code == 400
    assert "already exists" in response.json()["errors"]["id"][0]


def test_malformed_body_is_422(alice_client):
    assert post(alice_client, f"{BASE}/create", {"name": "no id or content"}).status_code == 422


def test_list_for_staff_shows_all_and_for_users_only_active(alice_client, bob_client, fn, alice):
    assert [f["id"] for f in alice_client.get(f"{BASE}/").json()] == ["api_pipe"]
    assert bob_client.get(f"{BASE}/").json() == []
    Function.objects.filter(pk="api_pipe").update(is_active=True)
    assert [f["id"] for f in bob_client.get(f"{BASE}/").json()] == ["api_pipe"]
    assert "content" not in bob_client.get(f"{BASE}/").json()[0]


def test_list_with_users(alice_client, fn, alice):
    body = alice_client.get(f"{BASE}/list").json()
    assert body[0]["user"] == {
        "id": str(alice.pk),
        "name": "alice",
        "role": "admin",
        "email": "alice@example.com",
    }


def test_get_update_toggle_delete(alice_client, fn):
    got = alice_client.get(f"{BASE}/id/api_pipe").json()
    assert got["content"] == PIPE and got["revision"] == 1
    updated = post(
        alice_client,
        f"{BASE}/id/api_pipe/update",
        {"id": "ignored", "name": "Renamed", "content": PIPE_V2},
    )
    assert updated.status_code == 200
    assert updated.json()["revision"] == 2 and updated.json()["name"] == "Renamed"
    assert post(alice_client, f"{BASE}/id/api_pipe/toggle").json()["is_active"] is True
    assert post(alice_client, f"{BASE}/id/api_pipe/toggle").json()["is_active"] is False
    assert post(alice_client, f"{BASE}/id/api_pipe/toggle/global").json()["is_global"] is True
    assert alice_client.delete(f"{BASE}/id/api_pipe/delete").json() is True
    assert not Function.objects.exists()


def test_update_with_broken_code_is_400_and_keeps_the_old_source(alice_client, fn):
    response = post(
        alice_client,
        f"{BASE}/id/api_pipe/update",
        {"id": "api_pipe", "content": "import nope_nope"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "import_error"
    assert Function.objects.get(pk="api_pipe").content == PIPE


def test_toggle_refuses_code_that_no_longer_loads(alice_client, fn):
    Function.objects.filter(pk="api_pipe").update(content="def (")
    response = post(alice_client, f"{BASE}/id/api_pipe/toggle")
    assert response.status_code == 400
    assert "Cannot activate api_pipe" in response.json()["detail"]
    assert alice_client.get(f"{BASE}/id/api_pipe").json()["load_error"].startswith("SyntaxError")


def test_revisions_and_rollback(alice_client, fn):
    post(alice_client, f"{BASE}/id/api_pipe/update", {"id": "api_pipe", "content": PIPE_V2})
    revisions = alice_client.get(f"{BASE}/id/api_pipe/revisions").json()
    assert [(r["number"], r["current"]) for r in revisions] == [(2, True), (1, False)]
    assert revisions[1]["author"] == "alice" and revisions[1]["load_result"]["kind"] == "pipe"
    rolled = post(alice_client, f"{BASE}/id/api_pipe/rollback", {"revision": 1})
    assert rolled.json()["content"] == PIPE and rolled.json()["revision"] == 3
    assert post(alice_client, f"{BASE}/id/api_pipe/rollback", {"revision": 99}).status_code == 404


def test_export_and_import(alice_client, fn):
    exported = alice_client.get(f"{BASE}/export").json()
    assert exported[0]["content"] == PIPE and exported[0]["id"] == "api_pipe"
    alice_client.delete(f"{BASE}/id/api_pipe/delete")
    response = post(alice_client, f"{BASE}/import", {"functions": exported})
    assert response.status_code == 200 and response.json()[0]["id"] == "api_pipe"


def test_missing_ids_are_404(alice_client):
    assert alice_client.get(f"{BASE}/id/nope").status_code == 404
    assert post(alice_client, f"{BASE}/id/nope/toggle").status_code == 404
    assert alice_client.delete(f"{BASE}/id/nope/delete").status_code == 404
    assert alice_client.get(f"{BASE}/id/nope/revisions").status_code == 404


STAFF_ONLY = [
    ("get", "/list"),
    ("get", "/export"),
    ("post", "/load/url"),
    ("post", "/create"),
    ("post", "/import"),
    ("get", "/id/api_pipe"),
    ("post", "/id/api_pipe/update"),
    ("post", "/id/api_pipe/toggle"),
    ("post", "/id/api_pipe/toggle/global"),
    ("delete", "/id/api_pipe/delete"),
    ("get", "/id/api_pipe/revisions"),
    ("post", "/id/api_pipe/rollback"),
]
BODIES = {
    "/load/url": {"url": "http://127.0.0.1:1/x.py"},
    "/create": {"id": "x", "name": "x", "content": PIPE},
    "/import": {"functions": []},
    "/id/api_pipe/update": {"id": "api_pipe", "content": PIPE_V2},
    "/id/api_pipe/rollback": {"revision": 1},
}


def call(client, method, path):
    if method == "post":
        return post(client, BASE + path, BODIES.get(path))
    return getattr(client, method)(BASE + path)


@pytest.mark.parametrize(("method", "path"), STAFF_ONLY)
def test_management_is_forbidden_to_ordinary_users(bob_client, fn, method, path):
    response = call(bob_client, method, path)
    assert response.status_code == 403
    assert Function.objects.get(pk="api_pipe").content == PIPE


@pytest.mark.parametrize(("method", "path"), [*STAFF_ONLY, ("get", "/")])
def test_anonymous_callers_are_401(anon, fn, method, path):
    assert call(anon, method, path).status_code == 401


def test_non_staff_cannot_probe_missing_ids(bob_client):
    assert bob_client.get(f"{BASE}/id/nope").status_code == 403


def test_api_key_authenticates_as_its_user(client, alice, fn):
    from fnplatform.accounts.services import api_key_create

    _, key = api_key_create(user=alice, name="script")
    response = client.get(f"{BASE}/id/api_pipe", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200
    assert client.get(f"{BASE}/", HTTP_AUTHORIZATION="Bearer fnp_wrong").status_code == 401


def test_session_posts_need_a_csrf_token(alice):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    response = post(strict, f"{BASE}/create", {"id": "x", "name": "x", "content": PIPE})
    assert response.status_code == 403
    assert not Function.objects.exists()


def test_openapi_docs_are_served(alice_client):
    page = alice_client.get("/api/docs")
    assert page.status_code == 200
    # Offline: the Swagger assets are ours, not a CDN's.
    assert "/static/ninja/swagger-ui-bundle.js" in page.text and "cdn" not in page.text
    schema = alice_client.get("/api/openapi.json").json()
    assert "/api/v1/functions/id/{id}/rollback" in schema["paths"]


# The permission matrix: the API asks for the admin's model permissions.


@pytest.fixture
def as_persona(persona_login):
    """Return a client logged in as one of PERSONAS."""
    return persona_login("functions.view_function")


# (method, path, expected status for superuser, viewer, bare staff, plain user)
MATRIX = [
    ("get", "/export", 200, 200, 403, 403),
    ("get", "/list", 200, 200, 403, 403),
    ("get", "/id/api_pipe", 200, 200, 403, 403),
    ("get", "/id/api_pipe/revisions", 200, 200, 403, 403),
    ("post", "/create", 200, 403, 403, 403),
    ("post", "/id/api_pipe/update", 200, 403, 403, 403),
    ("post", "/id/api_pipe/toggle", 200, 403, 403, 403),
    ("post", "/id/api_pipe/toggle/global", 200, 403, 403, 403),
    ("post", "/id/api_pipe/rollback", 400, 403, 403, 403),
    ("delete", "/id/api_pipe/delete", 200, 403, 403, 403),
]
CASES = matrix_cases(MATRIX)


@pytest.mark.parametrize(("method", "path", "persona", "expected"), CASES)
def test_permission_matrix(as_persona, fn, method, path, persona, expected):
    response = call(as_persona(persona), method, path)
    assert response.status_code == expected, response.content
    if expected == 403 and persona != "user":
        assert "permission" in response.json()["detail"]
    if expected == 403:
        assert Function.objects.get(pk="api_pipe").content == PIPE
        assert not Function.objects.filter(pk="x").exists()


def test_staff_without_a_permission_are_told_which_one(as_persona, fn):
    response = post(
        as_persona("viewer"), f"{BASE}/id/api_pipe/update", BODIES["/id/api_pipe/update"]
    )
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "Changing functions needs the functions.change_function permission, "
        "which your account does not have."
    )


@pytest.mark.parametrize(
    ("persona", "sees_inactive"),
    [("superuser", True), ("viewer", True), ("bare_staff", False), ("user", False)],
)
def test_list_shows_inactive_functions_only_to_those_who_may_view_them(
    as_persona, fn, persona, sees_inactive
):
    response = as_persona(persona).get(f"{BASE}/")
    assert response.status_code == 200
    assert [f["id"] for f in response.json()] == (["api_pipe"] if sees_inactive else [])


def test_export_with_valves_needs_the_valves_view_permission(as_persona, fn):
    client = as_persona("viewer")
    assert client.get(f"{BASE}/export").status_code == 200
    response = client.get(f"{BASE}/export?include_valves=true")
    assert response.status_code == 403
    assert "valves.view_functionvalves" in response.json()["detail"]


# Wrong-typed bodies are refused with a 4xx, never a 500.

STRING, OBJECT = {"string"}, {"object"}
FUNCTION_FIELDS = {"id": STRING, "name": STRING, "content": STRING, "meta": OBJECT}
IMPORT_ITEM = {"id": "imported", "name": "I", "content": PIPE, "meta": {}, "is_global": False}
TYPED_BODIES = [
    *typed_cases({"url": "http://127.0.0.1:1/x.py"}, {"url": STRING}, "/load/url "),
    *typed_cases(BODIES["/create"], FUNCTION_FIELDS, "/create "),
    *typed_cases(
        {**BODIES["/create"], "meta": {"description": "d"}},
        {"meta.description": STRING | {"null"}},
        "/create ",
    ),
    *typed_cases(BODIES["/id/api_pipe/update"], FUNCTION_FIELDS, "/id/api_pipe/update "),
    *typed_cases(BODIES["/id/api_pipe/rollback"], {"revision": {"int"}}, "/id/api_pipe/rollback "),
    *typed_cases(
        {"functions": [], "overwrite": False},
        {"functions": {"array"}, "overwrite": {"bool"}},
        "/import ",
    ),
    *typed_cases(
        {"functions": [IMPORT_ITEM], "overwrite": True},
        {
            "functions.0": OBJECT,
            "functions.0.id": STRING,
            "functions.0.name": {"string", "null", "int", "float", "bool", "array", "object"},
            "functions.0.content": STRING,
            "functions.0.meta": {"object", "null", "int", "float", "bool", "array", "string"},
            "functions.0.is_global": {"bool", "null", "int", "float", "string", "array", "object"},
            "functions.0.valves": {"object", "null", "int", "float", "bool", "array", "string"},
        },
        "/import ",
    ),
]


@pytest.mark.parametrize(("body", "must_refuse"), TYPED_BODIES)
def test_wrong_typed_bodies_are_a_4xx_never_a_500(alice_client, fn, request, body, must_refuse):
    path = request.node.callspec.id.split(" ", 1)[0]
    response = post(alice_client, BASE + path, body)
    assert_refused_or_accepted(response, must_refuse)


@pytest.mark.parametrize(
    "url", ["http://[", "http://a\x00b/", "http://", "https://exa mple.com/x", "ftp://x/y.py"]
)
def test_load_url_refuses_urls_that_are_not_urls_with_a_400(alice_client, url):
    response = post(alice_client, f"{BASE}/load/url", {"url": url})
    assert response.status_code == 400, response.content
    assert response.json()["errors"]["url"]


def test_create_keeps_meta_keys_the_schema_does_not_name(alice_client):
    body = {**BODIES["/create"], "meta": {"description": "d", "tags": ["a"]}}
    response = post(alice_client, f"{BASE}/create", body)
    assert response.status_code == 200, response.content
    assert response.json()["meta"]["tags"] == ["a"]
