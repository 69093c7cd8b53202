"""The plugin environment: community-shaped files use Open WebUI's packages, undeclared,
in sandboxed worker processes; the server itself never imports them."""

import importlib.util
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from functions.services import plugin_contract, plugin_env, runtime
from functions.workers.executor import ProcessExecutor
from functions.workers.pool import Limits
from tests.conftest import read_plugin
from tests.functions.test_process_executor import ctx
from tests.support.inline import worker_call

BASE_MODULES = ("fastapi", "starlette", "aiohttp", "loguru", "pandas", "numpy", "h2", "bs4")


@pytest.fixture
async def executor(tmp_path):
    # Roomier than test_process_executor's: pandas and friends load in these workers.
    process = ProcessExecutor(
        size=1,
        source_dir=str(tmp_path),
        limits=Limits(memory_mb=2048),
        timeout=60,
        first_chunk_timeout=60,
    )
    yield process
    await process.stop()


def user_says(text: str) -> dict:
    return {"model": "p", "messages": [{"role": "user", "content": text}], "stream": True}


async def answer(executor, call, text: str = "hi") -> str:
    chunks = runtime.run_pipe(call, user_says(text), ctx(), executor=executor)
    return "".join([_text(chunk) async for batch in chunks for chunk in batch])


def _text(chunk: runtime.Chunk) -> str:
    if chunk.text:
        return chunk.text
    choices = (chunk.data or {}).get("choices") or [{}]
    return choices[0].get("delta", {}).get("content") or ""


def test_workers_run_the_plugin_environment_and_the_server_imports_none_of_it():
    assert plugin_env.ready(), "make setup builds it"
    assert plugin_env.worker_python(None) == str(plugin_env.root() / "bin" / "python")
    assert str(plugin_env.site_dir(plugin_env.root())) == plugin_env.paths()[0]
    loaded = [name for name in BASE_MODULES if name in sys.modules]
    assert loaded == []
    assert all(importlib.util.find_spec(name) is None for name in ("fastapi", "loguru", "pandas"))


async def test_every_base_package_imports_undeclared_and_works_in_a_worker(executor):
    call = worker_call(executor, "probe", read_plugin("plugin_environment_pipe"))
    assert call.report.requirements == []
    results = json.loads(await answer(executor, call))
    assert results == {
        "fastapi": '{"a":1}',
        "starlette": "text/plain",
        "aiohttp": "ClientSession",
        "requests": "GET",
        "httpx_http2": "h2",
        "loguru": "logged",
        "bs4": "soup",
        "lxml": "tree",
        "sqlalchemy": 42,
        "aiofiles": "async file",
        "pytz": "Europe/Paris",
        "markdown": "<p><strong>bold</strong></p>",
        "jinja2": "hi jinja",
        "pyjwt": "probe",
        "tenacity": 3,
        "numpy": 10,
        "pandas": 6,
        "pillow": [4, 3],
        "openai": "OpenAI",
        "anthropic": "Anthropic",
        "tiktoken": 3,
        "python-docx": "docx text",
        "openpyxl": "cell",
        "pypdf": 1,
    }


async def test_an_aiohttp_pipe_streams_from_a_loopback_upstream(executor, upstream):
    call = worker_call(executor, "aio", read_plugin("aiohttp_stream_pipe"), BASE_URL=upstream.url)
    assert await answer(executor, call, "streamed by aiohttp") == "echo: streamed by aiohttp"


async def test_an_http2_httpx_client_works(executor, upstream):
    call = worker_call(executor, "h2", read_plugin("httpx_http2_pipe"), BASE_URL=upstream.url)
    # HTTP/2 is negotiated over TLS only; on plain http the client speaks HTTP/1.1.
    assert await answer(executor, call, "two") == "echo: two (HTTP/1.1)"


class Gate:
    """A loopback URL that answers only once the test opens it."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                gate.opened.wait(60)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/wait"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.opened.set()
        self.server.shutdown()
        self.server.server_close()


async def test_a_fastapi_streaming_response_passes_through_unbuffered(executor):
    gate = Gate()
    try:
        source = read_plugin("fastapi_streaming_pipe")
        call = worker_call(executor, "sse", source, WAIT_URL=gate.url)
        chunks = runtime.run_pipe(call, user_says("x"), ctx(), executor=executor)
        # The second chunk cannot exist until the gate opens: the first came through alone.
        first = await anext(chunks)
        assert [_text(chunk) for chunk in first] == ["first "]
        gate.opened.set()
        rest = [chunk async for batch in chunks for chunk in batch]
    finally:
        gate.close()
    assert "".join(_text(chunk) for chunk in rest) == "second"
    assert rest[-1].done


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("response", "<div class='card'><h3>Card</h3><p>hello</p></div>"),
        ("tuple", "<div class='card'><h3>Card</h3><p>hello</p></div>"),
    ],
)
async def test_an_action_returning_html_becomes_an_embed(executor, mode, expected):
    call = worker_call(executor, "card", read_plugin("html_response_action"), MODE=mode)
    body = {"messages": [{"role": "assistant", "content": "hello"}]}
    result = await runtime.run_action(call, body, ctx(), executor=executor)
    assert plugin_contract.html_of(result) == expected


async def test_an_action_returning_json_response_gives_its_data(executor):
    call = worker_call(executor, "card", read_plugin("html_response_action"), MODE="json")
    body = {"messages": [{"role": "assistant", "content": "hello"}]}
    assert await runtime.run_action(call, body, ctx(), executor=executor) == {"content": "HELLO"}


async def test_a_loguru_filter_logs_in_its_worker(executor):
    call = worker_call(executor, "audit", read_plugin("loguru_filter"))
    body = await runtime.apply_inlet([call], user_says("hi"), ctx(), executor=executor)
    assert body["audit"] == ["inlet from bob: 1 messages"]
