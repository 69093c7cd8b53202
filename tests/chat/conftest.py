"""Chat fixtures: a fresh secrets key, an empty model cache, and a live fake upstream."""

import pytest
from cryptography.fernet import Fernet

from chat.services.connections import forget_upstream_models
from tests.support.openai_server import FakeOpenAI


@pytest.fixture(autouse=True)
def _secrets_key(settings):
    settings.FNPLATFORM_SECRETS_KEY = Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def _no_cached_models():
    forget_upstream_models()
    yield
    forget_upstream_models()


@pytest.fixture
def fake_openai():
    """A started FakeOpenAI (real loopback HTTP server), stopped after the test."""
    server = FakeOpenAI().start()
    yield server
    server.stop()
