"""functions.services.request: `__request__` as plain data, and as plugins read it."""

import msgpack
import pytest
from django.test import RequestFactory

from functions.services import runtime
from functions.services.context import CallContext
from functions.services.request import (
    PluginRequest,
    origin_from_http,
    origin_from_scope,
    plugin_request,
    public_url,
    request_data,
)
from tests.support.inline import source_call


def _http_origin():
    request = RequestFactory().post(
        "/api/chat/completions?debug=1&token=t0k&tag=a&tag=b",
        data="{}",
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer sk-caller-secret",
        HTTP_X_API_KEY="key-secret",
        HTTP_USER_AGENT="relay-test/1.0",
        HTTP_X_RELAY_TEST="yes",
        HTTP_REFERER="http://testserver/c/42?t0k=ref-secret#top",
        REMOTE_ADDR="10.1.2.3",
        REMOTE_PORT="5555",
    )
    request.COOKIES = {"sessionid": "sess-secret", "csrftoken": "csrf-secret", "theme": "dark"}
    return origin_from_http(request)


def test_an_http_origin_keeps_what_plugins_read_and_no_credential():
    origin = _http_origin()
    headers = dict(origin["headers"])
    assert headers["user-agent"] == "relay-test/1.0" and headers["x-relay-test"] == "yes"
    assert origin["method"] == "POST"
    assert origin["base_url"] == "http://testserver/"
    assert origin["url"] == "http://testserver/api/chat/completions?debug=1&tag=a&tag=b"
    assert origin["cookies"] == {"theme": "dark"}
    assert origin["query_params"] == [["debug", "1"], ["tag", "a"], ["tag", "b"]]
    assert origin["client"] == ["10.1.2.3", 5555]
    assert headers["referer"] == "http://testserver/c/42"  # never another page's query
    dumped = repr(origin)
    for secret in ("sk-caller-secret", "key-secret", "sess-secret", "csrf-secret", "t0k"):
        assert secret not in dumped


def test_a_channels_scope_gives_the_same_shape():
    scope = {
        "type": "websocket",
        "path": "/ws/chat/1/",
        "query_string": b"x=1",
        "headers": [
            (b"host", b"chat.example.com"),
            (b"cookie", b"sessionid=sess-secret; lang=fr"),
            (b"user-agent", b"browser"),
        ],
        "client": ("192.0.2.1", 4000),
    }
    origin = origin_from_scope(scope)
    assert origin["url"] == "ws://chat.example.com/ws/chat/1/?x=1"
    assert origin["cookies"] == {"lang": "fr"}
    assert dict(origin["headers"]) == {"host": "chat.example.com", "user-agent": "browser"}
    assert origin["client"] == ["192.0.2.1", 4000]


def test_public_urls_lose_credentials_and_queries():
    assert public_url("https://user:pw@api.example.com:8443/v1?key=s#f") == (
        "https://api.example.com:8443/v1"
    )


def _data(**overrides):
    return (
        request_data(
            origin=_http_origin(),
            user={"id": "7", "name": "bob", "email": "bob@example.com", "role": "user"},
            config={"TASK_MODEL": "", "WEBUI_URL": "http://testserver"},
            models={"echo_pipe": {"id": "echo_pipe", "name": "Echo"}},
        )
        | overrides
    )


def test_the_worker_rebuilds_starlette_like_attributes():
    wired = msgpack.unpackb(msgpack.packb(_data()), raw=False)  # plain data travels
    request = plugin_request(wired)
    assert isinstance(request, PluginRequest)
    assert request.headers.get("User-Agent") == request.headers["user-agent"] == "relay-test/1.0"
    assert "X-Relay-Test" in request.headers and "authorization" not in request.headers
    assert request.url.path == "/api/chat/completions" and request.url.scheme == "http"
    assert str(request.base_url).rstrip("/") == "http://testserver"
    assert request.query_params["tag"] == "b"
    assert request.query_params.getlist("tag") == ["a", "b"]
    assert (request.client.host, request.client.port) == ("10.1.2.3", 5555)
    assert tuple(request.client) == ("10.1.2.3", 5555)  # unpacks like starlette's
    assert request.state.user.email == "bob@example.com"
    assert request.state.user.model_dump()["id"] == "7"  # the compat UserModel
    assert request.app.state.config.TASK_MODEL == ""
    assert getattr(request.app.state.config, "NOT_A_SETTING", "default") == "default"
    request.app.state.config.ENABLE_TITLE_GENERATION = False  # plugins do this; local only
    assert list(request.app.state.MODELS) == ["echo_pipe"]


def test_no_request_data_is_no_request():
    assert plugin_request(None) is None


READER = """
class Filter:
    def stream(self, event, __request__=None):
        event["ua"] = __request__.headers.get("user-agent")
        event["models"] = list(__request__.app.state.MODELS)
        return event
"""


@pytest.mark.parametrize("chunks", [1, 5])
async def test_a_stream_hook_sees_the_request_on_every_chunk_sent_in_full_once(chunks):
    from functions.services.executor import get_executor

    call = source_call("reader", READER)
    context = CallContext(user={"id": "7"}, request=_data())
    for _ in range(chunks):
        event = await runtime.apply_stream([call], {}, context)
        assert event == {"ua": "relay-test/1.0", "models": ["echo_pipe"]}
    [pool] = get_executor().pools().values()
    [worker] = pool.workers
    assert list(worker.known_requests) == [context.request["ref"]]
    assert list(worker.worker.requests) == [context.request["ref"]]


def test_a_request_passed_to_a_shim_travels_as_a_marker_and_comes_back_as_the_servers_copy():
    from functions.compat.open_webui import _host
    from functions.services.host import set_caller

    data = _data()
    request = plugin_request(data)
    request.app.state.config.WEBUI_URL = "http://forged.example"  # plugin-side edits
    wired = _host.encode([request, {"model": "m"}])
    assert wired == [{"__request__": True}, {"model": "m"}]

    set_caller({"id": "7"}, "relay", data)
    rebuilt, form = _host.decode(wired)
    assert isinstance(rebuilt, PluginRequest) and form == {"model": "m"}
    assert rebuilt.app.state.config.WEBUI_URL == "http://testserver"
    assert rebuilt.state.user.id == "7"
    set_caller({"id": "7"}, "relay", None)
    assert _host.decode([{"__request__": True}]) == [None]
