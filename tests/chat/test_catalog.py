"""Model discovery: pipes, the three manifold forms, failures that hide nothing else."""

import pytest

from chat.services.catalog import build_catalog
from functions.services.functions import function_create, function_set_active
from tests.conftest import read_plugin

pytestmark = pytest.mark.django_db(transaction=True)

FAILING = (
    "class Pipe:\n    def pipes(self):\n        raise RuntimeError('no key')\n"
    "    def pipe(self, body): ...\n"
)
SLOW = (
    "import asyncio\nclass Pipe:\n    async def pipes(self):\n        await asyncio.sleep(5)\n"
    "        return []\n    def pipe(self, body): ...\n"
)


def install(alice, id: str, content: str):
    function = function_create(user=alice, id=id, content=content)
    return function_set_active(user=alice, function=function, active=True)


@pytest.fixture
def no_upstreams(monkeypatch):
    monkeypatch.delenv("OPENAI_API_BASE_URLS", raising=False)


async def test_manifold_forms_and_failures(alice, settings, no_upstreams):
    from asgiref.sync import sync_to_async

    settings.FUNCTIONS_MANIFOLD_TIMEOUT = 0.5
    for name in ("echo_pipe", "list_manifold", "anthropic_manifold_async", "openai_manifold"):
        await sync_to_async(install)(alice, name, read_plugin(name))
    await sync_to_async(install)(alice, "failing", FAILING)
    await sync_to_async(install)(alice, "slow", SLOW)

    catalog = await build_catalog(refresh=True)
    ids = set(catalog.models)
    assert "echo_pipe" in ids
    assert {i for i in ids if i.startswith("list_manifold.")}  # a list attribute
    assert {i for i in ids if i.startswith("anthropic_manifold_async.")}  # an async method
    assert "openai_manifold.error" in ids  # a sync method (no key: its own error entry)
    named = catalog.models["openai_manifold.error"]
    assert named.name.startswith("OpenAI: ") and named.pipe_id == "openai_manifold"
    errors = {e["source"]: e["error"] for e in catalog.errors}
    assert errors["function:failing"] == "RuntimeError: no key"
    assert "timed out" in errors["function:slow"]


async def test_listing_is_cached_until_refresh(alice, settings, no_upstreams):
    from asgiref.sync import sync_to_async

    settings.FUNCTIONS_MANIFOLD_CACHE_SECONDS = 60
    source = (
        "import itertools\nCOUNT = itertools.count()\nclass Pipe:\n    def pipes(self):\n"
        "        return [{'id': f'v{next(COUNT)}', 'name': 'V'}]\n    def pipe(self, body): ...\n"
    )
    await sync_to_async(install)(alice, "counter", source)
    first = {i for i in (await build_catalog(refresh=True)).models if i.startswith("counter.")}
    again = {i for i in (await build_catalog()).models if i.startswith("counter.")}
    fresh = {i for i in (await build_catalog(refresh=True)).models if i.startswith("counter.")}
    assert first == again == {"counter.v0"}
    assert fresh == {"counter.v1"}
