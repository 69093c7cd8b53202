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


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """A channel layer of this test's own: the in-memory layer's queues belong to the
    event loop that first used them, and each async test has its own loop."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def gates():
    """tests.support.gates: plugin code waits on a named gate until the test opens it."""
    from tests.support import gates

    yield gates
    for name in list(gates._gates):
        gates.open_gate(name)  # never leave a plugin thread waiting
    gates.forget_gates()
