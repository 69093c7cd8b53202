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
async def gates():
    """tests.support.gates: plugin code waits on a named gate until the test opens it.
    Async so that it ends before the test's event loop does: the loop waits for its
    threads as it closes, one of them a plugin's wait on a gate nobody opened (a run
    stopped mid-answer)."""
    from tests.support import gates

    gates.reopen_gates()
    yield gates
    gates.close_gates()  # never leave a plugin thread waiting, now or later
