"""Shared fixtures: the alice/bob/outsider personas, clients, plugin sources."""

from pathlib import Path

import pytest

PLUGINS_DIR = Path(__file__).parent / "plugins"


@pytest.fixture(autouse=True)
def _fast_and_isolated(request, settings, tmp_path):
    from fnplatform import state

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.FUNCTIONS_SOURCE_DIR = tmp_path / "plugin_sources"
    # Unit tests run the worker's code in the test process (the "inline" executor,
    # which no server can choose), saved-code checks included; the live-server tests
    # and tests/functions/test_process_executor.py, test_check.py and test_isolation.py
    # run real sandboxed workers, as the server does.
    settings.FUNCTIONS_EXECUTOR = "inline"
    if not _commits(request):
        # The test's writes stay in its transaction, which only Django's connection sees:
        # requests read the generation there (the server reads it on its event loop).
        settings.FNPLATFORM_STATE_READER = "thread"
    yield
    from functions.services import functions
    from functions.services.executor import reset

    # Each test's plugins load afresh (some read os.environ at import).
    reset()
    functions._checked.clear()
    # A rolled-back test takes the generation back with it: no cache may outlive it.
    state.forget()


def _commits(request) -> bool:
    """Whether the test's database writes are committed (transactional tests)."""
    from pytest_django.fixtures import validate_django_db

    if {"transactional_db", "live", "live_server"} & set(request.fixturenames):
        return True
    marker = request.node.get_closest_marker("django_db")
    return marker is not None and bool(validate_django_db(marker)[0])  # its "transaction"


@pytest.fixture(scope="session", autouse=True)
def _test_database_can_be_dropped(django_db_setup, django_db_blocker):
    """On PostgreSQL, end the sessions that threads of this process (host-data and
    health-recording threads, worker threads of the inline executor) still hold, so
    the test database is dropped at the end instead of being left behind."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def alice(django_user_model):
    """Staff: authors and configures functions."""
    return django_user_model.objects.create_user(
        "alice", "alice@example.com", "pw-alice", is_staff=True, is_superuser=True
    )


@pytest.fixture
def bob(django_user_model):
    """An ordinary end user."""
    return django_user_model.objects.create_user("bob", "bob@example.com", "pw-bob")


@pytest.fixture
def outsider(django_user_model):
    """Another ordinary user, who must never see bob's things."""
    return django_user_model.objects.create_user("eve", "eve@example.com", "pw-eve")


@pytest.fixture
def staff_with(django_user_model):
    """Make an active staff member (not a superuser) holding only the named permissions."""
    from django.contrib.auth.models import Permission

    def make(username: str, *perms: str):
        user = django_user_model.objects.create_user(username, password="pw", is_staff=True)
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        return django_user_model.objects.get(pk=user.pk)  # a fresh permission cache

    return make


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(django_user_model, bob):
    from django.test import Client

    c = Client()
    c.force_login(bob)
    return c


def read_plugin(name: str) -> str:
    # Bytes, so CRLF line endings and a BOM reach the loader as written.
    return (PLUGINS_DIR / f"{name}.py").read_bytes().decode("utf-8")


@pytest.fixture
def plugin_source():
    """Return the text of tests/plugins/<name>.py."""
    return read_plugin


@pytest.fixture
def make_function(alice):
    """Create a function through the service, so fixtures obey the same rules."""
    from functions.services.functions import function_create

    def make(source_name: str = "echo_pipe", *, id: str | None = None, **overrides):
        fields = {
            "id": id or source_name,
            "name": overrides.pop("name", source_name.replace("_", " ").title()),
            "content": overrides.pop("content", None) or read_plugin(source_name),
        }
        fields.update(overrides)
        return function_create(user=alice, **fields)

    return make


@pytest.fixture(scope="session")
def upstream():
    """A real loopback OpenAI-compatible server, the upstream of the live app."""
    from tests.support.openai_server import FakeOpenAI

    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def live_app(django_db_setup, django_db_blocker, upstream):
    """A daphne process serving the app on the test database, upstream configured by env,
    its plugins in sandboxed worker processes."""
    from tests.support.live import LiveServer

    env = {"OPENAI_API_BASE_URLS": upstream.url, "OPENAI_API_KEYS": ""}
    with django_db_blocker.unblock():
        server = LiveServer(env)
    server.executor = "process"
    yield server
    server.stop()


@pytest.fixture
def live(live_app, transactional_db):
    """The live app, for a test whose data the server process must see (committed)."""
    return live_app


@pytest.fixture
def api_key(alice):
    """A key for alice (staff), for API clients such as the openai SDK."""
    from fnplatform.accounts.services import api_key_create

    return api_key_create(user=alice, name="tests")[1]


@pytest.fixture
def bob_key(bob):
    from fnplatform.accounts.services import api_key_create

    return api_key_create(user=bob, name="tests")[1]


@pytest.fixture
def persona_login(alice, bob, staff_with):
    """persona_login(*viewer_perms)(persona): a client logged in as one of
    tests.support.personas.PERSONAS; the viewer holds viewer_perms."""
    from django.test import Client

    def personas(*viewer_perms: str):
        users = {
            "superuser": lambda: alice,
            "viewer": lambda: staff_with("vera", *viewer_perms),
            "bare_staff": lambda: staff_with("stan"),
            "user": lambda: bob,
        }

        def login(persona: str) -> Client:
            client = Client()
            client.force_login(users[persona]())
            return client

        return login

    return personas
