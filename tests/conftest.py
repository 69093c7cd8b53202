"""Shared fixtures: the alice/bob/outsider personas, clients, plugin sources."""

from pathlib import Path

import pytest

PLUGINS_DIR = Path(__file__).parent / "plugins"


@pytest.fixture(autouse=True)
def _fast_and_isolated(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.FUNCTIONS_SOURCE_DIR = tmp_path / "plugin_sources"


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
