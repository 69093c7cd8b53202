"""Open WebUI's /api/v1/auths/ and /api/v1/users/ endpoints, grouped by endpoint."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.utils import timezone

from fnplatform.accounts.models import ApiKey, SigninToken
from fnplatform.accounts.services import INVALID_CREDENTIALS, api_key_create, hash_key

pytestmark = pytest.mark.django_db

AUTHS = "/api/v1/auths"
USERS = "/api/v1/users"
PERSONAS = ["superuser", "viewer", "bare_staff", "user", "anonymous"]


def post(client: Client, path: str, body: dict | None = None, **headers):
    return client.post(path, json.dumps(body or {}), content_type="application/json", **headers)


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def sign_in(client: Client, login: str, password: str, field: str = "email"):
    return post(client, f"{AUTHS}/signin", {field: login, "password": password})


@pytest.fixture
def as_persona(alice, bob, staff_with):
    """A client for each persona: staff holding all permissions, staff who may view
    users, staff with none, an ordinary user, and nobody."""
    users = {
        "superuser": lambda: alice,
        "viewer": lambda: staff_with("vera", "auth.view_user"),
        "bare_staff": lambda: staff_with("stan"),
        "user": lambda: bob,
    }

    def login(persona: str) -> Client:
        client = Client()
        if persona != "anonymous":
            client.force_login(users[persona]())
        return client

    return login


# The permission matrix: (method, path, body, status per persona in PERSONAS order).
# {eve} is another ordinary user's id: staff who may view users see her, nobody else.
NEW_USER = {"name": "Nia", "email": "nia@example.com", "password": "pw-nia-1234", "role": "user"}
MATRIX = [
    ("get", f"{AUTHS}/", None, (200, 200, 200, 200, 401)),
    ("post", f"{AUTHS}/signin", {"email": "bob", "password": "pw-bob"}, (200,) * 5),
    ("get", f"{AUTHS}/signout", None, (200, 200, 200, 200, 200)),
    ("post", f"{AUTHS}/signout", None, (200, 200, 200, 200, 200)),
    ("post", f"{AUTHS}/add", NEW_USER, (200, 403, 403, 403, 401)),
    ("get", f"{AUTHS}/api_key", None, (404, 404, 404, 404, 401)),
    ("post", f"{AUTHS}/api_key", None, (200, 200, 200, 200, 401)),
    ("delete", f"{AUTHS}/api_key", None, (200, 200, 200, 200, 401)),
    ("get", f"{USERS}/", None, (200, 200, 403, 403, 401)),
    ("get", f"{USERS}/{{eve}}", None, (200, 200, 404, 404, 401)),
    ("delete", f"{USERS}/{{eve}}", None, (200, 403, 403, 403, 401)),
]
CASES = [
    pytest.param(method, path, body, persona, expected[i], id=f"{persona}-{method}-{path}")
    for method, path, body, expected in MATRIX
    for i, persona in enumerate(PERSONAS)
]


@pytest.mark.parametrize(("method", "path", "body", "persona", "expected"), CASES)
def test_permission_matrix(as_persona, outsider, method, path, body, persona, expected):
    client = as_persona(persona)
    path = path.format(eve=outsider.pk)
    response = post(client, path, body) if method == "post" else getattr(client, method)(path)

    assert response.status_code == expected, response.content
    if expected in (401, 403, 404):
        assert response.json()["detail"]
    if method == "delete" and USERS in path:
        assert get_user_model().objects.filter(pk=outsider.pk).exists() == (expected != 200)
    if path.endswith("/add"):
        assert get_user_model().objects.filter(email="nia@example.com").exists() == (
            expected == 200
        )


def test_ordinary_users_are_told_only_staff_manage_users(as_persona):
    response = as_persona("user").get(f"{USERS}/")

    assert response.json()["detail"] == "Only staff members can manage users."


def test_staff_without_the_permission_are_told_which_one(as_persona):
    response = post(as_persona("viewer"), f"{AUTHS}/add", NEW_USER)

    assert response.json()["detail"] == (
        "Adding users needs the auth.add_user permission, which your account does not have."
    )


def test_every_endpoint_is_in_the_openapi_docs_with_its_statuses(alice_client):
    paths = alice_client.get("/api/openapi.json").json()["paths"]

    expected = {
        f"{AUTHS}/": {"get": {"200", "401"}},
        f"{AUTHS}/signin": {"post": {"200", "400"}},
        f"{AUTHS}/signout": {"get": {"200"}, "post": {"200"}},
        f"{AUTHS}/add": {"post": {"200", "400", "401", "403"}},
        f"{AUTHS}/api_key": {
            "get": {"200", "401", "404"},
            "post": {"200", "401"},
            "delete": {"200", "401"},
        },
        f"{USERS}/": {"get": {"200", "401", "403"}},
        f"{USERS}/{{id}}": {"get": {"200", "401", "404"}, "delete": {"200", "401", "403", "404"}},
    }
    for path, methods in expected.items():
        for method, statuses in methods.items():
            assert set(paths[path][method]["responses"]) == statuses, (path, method)


# GET /api/v1/auths/


def test_session_user_has_open_webuis_shape(alice_client, alice):
    response = alice_client.get(f"{AUTHS}/")

    assert response.json() == {
        "id": str(alice.pk),
        "email": "alice@example.com",
        "name": "alice",
        "role": "admin",
        "profile_image_url": "/user.png",
        "token": None,  # a browser session has no bearer token
        "token_type": "Bearer",
        "expires_at": None,
    }


def test_session_user_echoes_an_api_key_without_expiry(client, bob):
    _, key = api_key_create(user=bob)

    data = client.get(f"{AUTHS}/", **bearer(key)).json()

    assert (data["id"], data["role"], data["token"], data["expires_at"]) == (
        str(bob.pk),
        "user",
        key,
        None,
    )


def test_session_user_gives_a_signin_tokens_expiry(client, bob):
    signed_in = sign_in(client, "bob", "pw-bob").json()

    data = Client().get(f"{AUTHS}/", **bearer(signed_in["token"])).json()

    assert data["token"] == signed_in["token"]
    assert data["expires_at"] == signed_in["expires_at"]


# POST /api/v1/auths/signin


@pytest.mark.parametrize(
    ("field", "login"),
    [
        pytest.param("email", "bob@example.com", id="email"),
        pytest.param("email", "BOB@Example.com", id="email-any-case"),
        pytest.param("email", "bob", id="username-in-the-email-field"),
        pytest.param("username", "bob", id="username-field"),
    ],
)
def test_signin_gives_a_bearer_token_for_the_whole_api(client, bob, field, login):
    response = sign_in(client, login, "pw-bob", field)

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["token"].startswith("fnpt_") and data["token_type"] == "Bearer"
    assert (data["id"], data["email"], data["name"], data["role"]) == (
        str(bob.pk),
        "bob@example.com",
        "bob",
        "user",
    )
    headers = bearer(data["token"])
    fresh = Client()
    assert fresh.get("/api/v1/functions/", **headers).status_code == 200
    assert fresh.get("/v1/models", **headers).status_code == 200


@pytest.mark.parametrize(
    ("login", "password"),
    [
        pytest.param("bob", "wrong", id="wrong-password"),
        pytest.param("nobody@example.com", "pw-bob", id="unknown-email"),
        pytest.param("nobody", "pw-bob", id="unknown-username"),
        pytest.param("", "pw-bob", id="no-login"),
        pytest.param("bob", "", id="no-password"),
    ],
)
def test_wrong_credentials_are_a_400_saying_so(client, bob, login, password):
    response = sign_in(client, login, password)

    assert response.status_code == 400
    assert response.json()["detail"] == INVALID_CREDENTIALS
    assert not SigninToken.objects.exists()


def test_an_inactive_account_cannot_sign_in(client, bob):
    bob.is_active = False
    bob.save()

    assert sign_in(client, "bob", "pw-bob").status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"email": "bob"}, id="no-password-key"),
        pytest.param({"email": "bob", "password": 5}, id="password-not-a-string"),
        pytest.param({"email": ["bob"], "password": "pw-bob"}, id="email-not-a-string"),
    ],
)
def test_malformed_signin_bodies_are_a_422_never_a_500(client, bob, body):
    assert post(client, f"{AUTHS}/signin", body).status_code == 422


def test_an_email_two_accounts_share_signs_in_the_first_of_them(client, bob, django_user_model):
    # One password check per sign-in, whatever the login (no timing tells); the other
    # account signs in by its username.
    django_user_model.objects.create_user("bob2", "bob@example.com", "pw-other")

    assert sign_in(client, "bob@example.com", "pw-bob").json()["name"] == "bob"
    assert sign_in(client, "bob@example.com", "pw-other").status_code == 400
    assert sign_in(client, "bob2", "pw-other").json()["name"] == "bob2"


def test_only_the_tokens_hash_is_stored(client, bob):
    token = sign_in(client, "bob", "pw-bob").json()["token"]

    stored = SigninToken.objects.get()
    assert stored.token_hash == hash_key(token)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_signintoken WHERE id = %s", [stored.pk])
        row = cursor.fetchone()
    assert all(token not in str(value) for value in row)


def test_the_token_expires_after_the_setting(client, bob, settings):
    settings.SIGNIN_TOKEN_SECONDS = 60
    before = timezone.now()
    data = sign_in(client, "bob", "pw-bob").json()
    headers = bearer(data["token"])

    stored = SigninToken.objects.get()
    assert (
        before + timedelta(seconds=60)
        <= stored.expires_at
        <= timezone.now() + timedelta(seconds=60)
    )
    assert data["expires_at"] == int(stored.expires_at.timestamp())
    assert Client().get(f"{AUTHS}/", **headers).status_code == 200

    # The clock moves past the expiry: the stored time is moved instead.
    SigninToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Client().get(f"{AUTHS}/", **headers).status_code == 401
    assert Client().get("/api/v1/functions/", **headers).status_code == 401


def test_signing_in_again_clears_the_accounts_dead_tokens(client, bob, alice):
    sign_in(client, "bob", "pw-bob")
    sign_in(client, "alice", "pw-alice")
    SigninToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    sign_in(client, "bob", "pw-bob")

    assert SigninToken.objects.filter(user=bob).count() == 1
    assert SigninToken.objects.filter(user=alice).count() == 1  # alice's waits for her


# GET/POST /api/v1/auths/signout


@pytest.mark.parametrize("method", ["get", "post"])
def test_signout_revokes_the_token(client, bob, method):
    token = sign_in(client, "bob", "pw-bob").json()["token"]
    other = sign_in(client, "bob", "pw-bob").json()["token"]
    caller = Client()

    response = getattr(caller, method)(f"{AUTHS}/signout", **bearer(token))

    assert response.status_code == 200
    assert response.json() == {"status": True}
    assert caller.get(f"{AUTHS}/", **bearer(token)).status_code == 401
    assert caller.get(f"{AUTHS}/", **bearer(other)).status_code == 200  # another sign-in
    assert SigninToken.objects.get(token_hash=hash_key(token)).revoked_at is not None


def test_signout_leaves_api_keys_alone(client, bob):
    _, key = api_key_create(user=bob)

    client.get(f"{AUTHS}/signout", **bearer(key))

    assert client.get(f"{AUTHS}/", **bearer(key)).status_code == 200


# POST /api/v1/auths/add


def test_add_creates_an_account_that_can_sign_in(alice_client):
    response = post(alice_client, f"{AUTHS}/add", NEW_USER)

    assert response.status_code == 200, response.content
    data = response.json()
    created = get_user_model().objects.get(email="nia@example.com")
    assert data["id"] == str(created.pk)
    assert (data["name"], data["email"], data["role"]) == ("Nia", "nia@example.com", "user")
    assert (created.username, created.is_active, created.is_staff) == (
        "nia@example.com",
        True,
        False,
    )
    assert Client().get(f"{AUTHS}/", **bearer(data["token"])).json()["id"] == str(created.pk)
    assert sign_in(Client(), "nia@example.com", "pw-nia-1234").status_code == 200


@pytest.mark.parametrize(
    ("role", "is_staff", "is_active"),
    [
        pytest.param("admin", True, True, id="admin-is-staff"),
        pytest.param("user", False, True, id="user"),
        pytest.param("pending", False, False, id="pending-is-inactive"),
        pytest.param(None, False, False, id="default-is-pending"),
    ],
)
def test_add_maps_open_webui_roles(alice_client, role, is_staff, is_active):
    body = {k: v for k, v in NEW_USER.items() if k != "role"}
    if role:
        body["role"] = role

    data = post(alice_client, f"{AUTHS}/add", body).json()

    created = get_user_model().objects.get(email="nia@example.com")
    assert (created.is_staff, created.is_active, created.is_superuser) == (
        is_staff,
        is_active,
        False,
    )
    assert data["role"] == (role or "pending")
    assert (data["token"] is None) == (not is_active)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"email": "not-an-email"}, "email", id="bad-email"),
        pytest.param({"email": "BOB@example.com"}, "email", id="email-taken"),
        pytest.param({"role": "owner"}, "role", id="unknown-role"),
        pytest.param({"name": "x" * 151}, "name", id="name-too-long"),
    ],
)
def test_add_refuses_bad_fields_with_a_400_naming_them(alice_client, bob, change, field):
    response = post(alice_client, f"{AUTHS}/add", NEW_USER | change)

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not get_user_model().objects.filter(first_name="Nia").exists()


def test_making_staff_also_needs_the_change_permission(staff_with):
    client = Client()
    client.force_login(staff_with("adder", "auth.add_user"))

    assert post(client, f"{AUTHS}/add", NEW_USER).status_code == 200
    response = post(client, f"{AUTHS}/add", NEW_USER | {"email": "a@example.com", "role": "admin"})
    assert response.status_code == 403
    assert "auth.change_user" in response.json()["detail"]


# GET/POST/DELETE /api/v1/auths/api_key


def test_api_key_is_created_shown_by_its_prefix_then_deleted(bob_client, bob):
    created = post(bob_client, f"{AUTHS}/api_key").json()["api_key"]
    assert created.startswith("fnp_")
    assert Client().get(f"{AUTHS}/", **bearer(created)).json()["id"] == str(bob.pk)

    shown = bob_client.get(f"{AUTHS}/api_key").json()["api_key"]
    assert shown == created[:12] + "…"  # only the hash is kept, not the key

    response = bob_client.delete(f"{AUTHS}/api_key")
    assert response.status_code == 200 and response.json() is True
    assert bob_client.get(f"{AUTHS}/api_key").status_code == 404
    assert Client().get(f"{AUTHS}/", **bearer(created)).status_code == 401


def test_a_new_api_key_replaces_the_account_key_only(bob_client, bob):
    _, named = api_key_create(user=bob, name="laptop")
    first = post(bob_client, f"{AUTHS}/api_key").json()["api_key"]

    second = post(bob_client, f"{AUTHS}/api_key").json()["api_key"]
    bob_client.delete(f"{AUTHS}/api_key")

    assert Client().get(f"{AUTHS}/", **bearer(first)).status_code == 401
    assert Client().get(f"{AUTHS}/", **bearer(second)).status_code == 401
    assert Client().get(f"{AUTHS}/", **bearer(named)).status_code == 200
    assert ApiKey.objects.filter(user=bob, is_account_key=True).count() == 2


def test_a_signed_in_script_may_make_its_api_key(client, bob):
    token = sign_in(client, "bob", "pw-bob").json()["token"]

    response = post(Client(), f"{AUTHS}/api_key", **bearer(token))

    assert response.status_code == 200
    assert response.json()["api_key"].startswith("fnp_")


# GET /api/v1/users/


def test_users_list_has_open_webuis_shape(alice_client, alice, bob, outsider):
    data = alice_client.get(f"{USERS}/").json()

    assert data["total"] == 3
    assert [u["id"] for u in data["users"]] == [str(alice.pk), str(bob.pk), str(outsider.pk)]
    first = data["users"][0]
    assert set(first) == {
        "id",
        "name",
        "email",
        "username",
        "role",
        "profile_image_url",
        "last_active_at",
        "updated_at",
        "created_at",
        "group_ids",
    }
    assert (first["role"], data["users"][1]["role"]) == ("admin", "user")


def test_users_list_searches_orders_and_pages(alice_client, bob, outsider, django_user_model):
    for n in range(30):
        django_user_model.objects.create_user(f"extra{n:02}", f"extra{n:02}@example.com")

    found = alice_client.get(f"{USERS}/?query=EVE").json()
    assert [u["username"] for u in found["users"]] == ["eve"]
    backwards = alice_client.get(f"{USERS}/?order_by=email&direction=desc").json()
    assert backwards["users"][0]["username"] == "extra29"
    second_page = alice_client.get(f"{USERS}/?page=2").json()
    assert second_page["total"] == 33
    assert [u["username"] for u in second_page["users"]] == ["extra27", "extra28", "extra29"]


# GET /api/v1/users/{id}


def test_an_ordinary_user_sees_their_own_record(bob_client, bob):
    data = bob_client.get(f"{USERS}/{bob.pk}").json()

    assert (data["id"], data["email"], data["role"]) == (str(bob.pk), "bob@example.com", "user")


def test_an_unknown_user_is_a_404(alice_client):
    assert alice_client.get(f"{USERS}/999999").status_code == 404


# DELETE /api/v1/users/{id}


def test_nobody_deletes_their_own_account(alice_client, alice):
    response = alice_client.delete(f"{USERS}/{alice.pk}")

    assert response.status_code == 403
    assert response.json()["detail"] == "You cannot delete your own account."
    assert get_user_model().objects.filter(pk=alice.pk).exists()


def test_only_a_superuser_deletes_a_superuser(staff_with, alice, bob):
    client = Client()
    client.force_login(staff_with("remover", "auth.delete_user"))

    assert client.delete(f"{USERS}/{alice.pk}").status_code == 403
    assert client.delete(f"{USERS}/{bob.pk}").status_code == 200
    assert not get_user_model().objects.filter(pk=bob.pk).exists()


def test_deleting_an_unknown_user_is_a_404(alice_client):
    assert alice_client.delete(f"{USERS}/999999").status_code == 404


def test_a_deleted_users_tokens_and_keys_go_with_it(alice_client, client, bob):
    token = sign_in(client, "bob", "pw-bob").json()["token"]
    _, key = api_key_create(user=bob)

    alice_client.delete(f"{USERS}/{bob.pk}")

    assert Client().get(f"{AUTHS}/", **bearer(token)).status_code == 401
    assert Client().get(f"{AUTHS}/", **bearer(key)).status_code == 401
