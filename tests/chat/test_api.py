"""The chat API against a live daphne server, driven by the official openai SDK.

The upstream model is a real loopback OpenAI-compatible server (tests/support).
"""

import json
import threading
import time

import httpx
import openai
import pytest

from functions.services.functions import function_create, function_set_active, function_set_global
from tests.conftest import read_plugin
from tests.support.payloads import assert_refused_or_accepted, typed_cases
from valves.services import valves_update_global


@pytest.fixture
def install(live, alice):
    """Create and activate a function from tests/plugins, with optional valves."""

    def make(name: str, *, id: str | None = None, valves: dict | None = None, is_global=False):
        function = function_create(user=alice, id=id or name, content=read_plugin(name))
        if valves:
            valves_update_global(user=alice, function=function, values=valves)
        function = function_set_active(user=alice, function=function, active=True)
        if is_global:
            function = function_set_global(user=alice, function=function, is_global=True)
        return function

    return make


@pytest.fixture
def sdk(live, api_key):
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=api_key, max_retries=0, timeout=30)


@pytest.fixture
def bob_sdk(live, bob_key):
    return openai.OpenAI(base_url=f"{live.url}/api", api_key=bob_key, max_retries=0, timeout=30)


def ask(client, model: str, text: str, **kwargs):
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], **kwargs
    )


def streamed(client, model: str, text: str, **kwargs) -> str:
    stream = ask(client, model, text, stream=True, **kwargs)
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def test_models_list_pipes_manifolds_and_upstream(sdk, install):
    install("echo_pipe")
    install("list_manifold")
    ids = {m.id for m in sdk.models.list()}
    assert {"echo_pipe", "fake-small", "fake-large"} <= ids
    assert {i for i in ids if i.startswith("list_manifold.")}


def test_chat_with_a_pipe_streamed_and_not(sdk, install):
    install("echo_pipe", valves={"PREFIX": "said: "})
    assert ask(sdk, "echo_pipe", "hello").choices[0].message.content == "said: hello"
    assert streamed(sdk, "echo_pipe", "hello") == "said: hello"


def test_chat_with_an_upstream_model_through_global_filters(sdk, install, upstream):
    install("upper_filter", is_global=True)
    answer = ask(sdk, "fake-small", "quiet words")
    assert answer.choices[0].message.content == "echo: QUIET WORDS"
    assert answer.usage.total_tokens > 0
    assert streamed(sdk, "fake-small", "quiet words") == "echo: QUIET WORDS"


def test_requests_proxy_manifold_runs_unchanged(sdk, install, upstream):
    install("requests_proxy_manifold", valves={"BASE_URL": upstream.url})
    models = {m.id for m in sdk.models.list()}
    assert "requests_proxy_manifold.fake-small" in models
    assert (
        streamed(sdk, "requests_proxy_manifold.fake-small", "via requests") == "echo: via requests"
    )
    assert (
        ask(sdk, "requests_proxy_manifold.fake-small", "plain").choices[0].message.content
        == "echo: plain"
    )


def test_async_httpx_pipe_streams(sdk, install, upstream):
    install("httpx_async_pipe", valves={"BASE_URL": upstream.url})
    assert streamed(sdk, "httpx_async_pipe", "async hi") == "echo: async hi"


def test_model_routing_filter_sends_the_request_elsewhere(sdk, install, upstream):
    install("model_router_filter", is_global=True)
    before = len(upstream.requests)
    ask(sdk, "fake-small", "write code please")
    sent = [
        body for path, _, body in upstream.requests[before:] if path.endswith("/chat/completions")
    ]
    assert sent[-1]["model"] == "fake-large"


def test_stream_filter_rewrites_chunks(sdk, install):
    install("censor_stream_filter", is_global=True)
    install("echo_pipe", valves={"PREFIX": ""})
    assert streamed(sdk, "echo_pipe", "my secret plan") == "my ****** plan"


def test_inlet_exception_is_a_400_with_the_plugins_message(sdk, install):
    install("max_turns_filter", is_global=True)
    install("echo_pipe")
    messages = [{"role": "user", "content": f"turn {i}"} for i in range(12)]
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(model="echo_pipe", messages=messages)
    assert "Conversation turn limit exceeded" in str(info.value)


def test_first_chunk_reaches_the_client_before_the_pipe_finishes(sdk, install):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    called = threading.Event()

    class Marker(BaseHTTPRequestHandler):
        def do_GET(self):
            called.set()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Marker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        marker = f"http://127.0.0.1:{server.server_address[1]}/finished"
        install("marker_stream_pipe", valves={"MARKER": marker, "PAUSE": 1.5})
        stream = ask(sdk, "marker_stream_pipe", "go", stream=True)
        first = next(c for c in stream if c.choices and c.choices[0].delta.content)
        assert first.choices[0].delta.content == "first "
        assert not called.is_set()
        rest = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert rest == "second" and called.wait(5)
    finally:
        server.shutdown()


def test_a_sleeping_sync_pipe_does_not_block_other_requests(sdk, install):
    install("slow_sync_pipe", valves={"SECONDS": 2.0})
    install("echo_pipe")
    finished: list[str] = []
    slow = threading.Thread(
        target=lambda: finished.append(ask(sdk, "slow_sync_pipe", "x").choices[0].message.content)
    )
    slow.start()
    time.sleep(0.3)  # the slow pipe is now sleeping in the server
    started = time.monotonic()
    finished.append(ask(sdk, "echo_pipe", "quick").choices[0].message.content)
    quick_seconds = time.monotonic() - started
    slow.join()
    assert finished == ["echo: quick", "slept"]
    print(f"trivial request alongside a 2 s sync pipe took {quick_seconds:.3f} s")


def test_stop_endpoint_cancels_a_running_answer(live, api_key, install):
    install("marker_stream_pipe", valves={"MARKER": "/nonexistent/never", "PAUSE": 30})
    headers = {"Authorization": f"Bearer {api_key}"}
    body = {
        "model": "marker_stream_pipe",
        "messages": [{"role": "user", "content": "x"}],
        "stream": True,
        "chat_id": "local:chat-stop-1",  # a temporary chat: answered, saved nowhere
    }
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST", f"{live.url}/api/chat/completions", json=body, headers=headers
        ) as response,
    ):
        lines = response.iter_lines()
        assert "first" in next(line for line in lines if line.startswith("data:"))
        stop = client.post(f"{live.url}/api/tasks/chat/local:chat-stop-1/stop", headers=headers)
        assert stop.json() == {"status": True, "stopped": 1}
        tail = [line for line in lines if line.startswith("data:")]
    assert tail[-1] == "data: [DONE]"
    assert '"finish_reason": "stop"' in tail[-2]


def test_client_disconnect_cancels_the_upstream_request(live, api_key):
    from tests.support.openai_server import FakeOpenAI

    slow_upstream = FakeOpenAI(chunk_delay=0.3).start()
    try:
        from django.contrib.auth import get_user_model

        from chat.services.connections import connection_create

        alice = get_user_model().objects.get(username="alice")
        connection_create(
            user=alice, name="slow", base_url=slow_upstream.url, model_ids=["fake-large"]
        )
        client = openai.OpenAI(base_url=f"{live.url}/v1", api_key=api_key, max_retries=0)
        text = " ".join(f"w{i}" for i in range(40))
        stream = client.chat.completions.create(
            model="fake-large", messages=[{"role": "user", "content": text}], stream=True
        )
        next(iter(stream))
        stream.close()
        assert slow_upstream.client_disconnected.wait(timeout=10)
    finally:
        slow_upstream.stop()


def test_errors_mid_stream_end_with_an_error_frame(live, api_key, alice):
    source = (
        "class Pipe:\n    async def pipe(self, body):\n        yield 'partial'\n"
        "        raise RuntimeError('model went away')\n"
    )
    function = function_create(user=alice, id="flaky", content=source)
    function_set_active(user=alice, function=function, active=True)
    headers = {"Authorization": f"Bearer {api_key}"}
    body = {"model": "flaky", "messages": [{"role": "user", "content": "x"}], "stream": True}
    response = httpx.post(
        f"{live.url}/api/chat/completions", json=body, headers=headers, timeout=30
    )
    frames = [line for line in response.text.splitlines() if line.startswith("data:")]
    assert "partial" in frames[0]
    assert "Function flaky failed: model went away" in frames[-2]
    assert frames[-1] == "data: [DONE]"


def test_actions_single_and_multi(live, api_key, install):
    install("ping_action", is_global=True)
    install("multi_action", is_global=True)
    install("echo_pipe")
    headers = {"Authorization": f"Bearer {api_key}"}
    models = httpx.get(f"{live.url}/api/models", headers=headers).json()["data"]
    echo = next(m for m in models if m["id"] == "echo_pipe")
    action_ids = [a["id"] for a in echo["actions"]]
    assert {"ping_action", "multi_action.summarize", "multi_action.translate"} <= set(action_ids)
    body = {
        "model": "echo_pipe",
        "messages": [{"id": "m1", "role": "assistant", "content": "hi"}],
        "id": "m1",
        "chat_id": "c1",
    }
    ping = httpx.post(f"{live.url}/api/chat/actions/ping_action", json=body, headers=headers)
    assert ping.status_code == 200 and ping.json()["content"] == "pong"
    sub = httpx.post(
        f"{live.url}/api/chat/actions/multi_action.translate", json=body, headers=headers
    )
    assert sub.status_code == 200


def test_permission_checks_on_models_and_actions(live, bob_sdk, bob_key, install, alice):
    from functions.models import ModelSettings

    install("echo_pipe")
    install("ping_action")  # active but neither global nor attached
    settings = ModelSettings.objects.create(model_id="echo_pipe")
    settings.allowed_users.add(alice)
    assert "echo_pipe" not in {m.id for m in bob_sdk.models.list()}
    with pytest.raises(openai.PermissionDeniedError):
        ask(bob_sdk, "echo_pipe", "hi")
    with pytest.raises(openai.NotFoundError):
        ask(bob_sdk, "no_such_model", "hi")
    headers = {"Authorization": f"Bearer {bob_key}"}
    body = {"model": "fake-small", "messages": [], "id": "m1"}
    response = httpx.post(f"{live.url}/api/chat/actions/ping_action", json=body, headers=headers)
    assert response.status_code == 403


def test_anonymous_callers_get_401(live):
    body = {"model": "fake-small", "messages": []}
    assert httpx.post(f"{live.url}/api/chat/completions", json=body).status_code == 401
    assert httpx.get(f"{live.url}/v1/models").status_code == 401


def test_prompt_rewriting_filter_uses_generate_chat_completion(sdk, install, upstream):
    install("prompt_rewrite_filter", is_global=True)
    answer = ask(sdk, "fake-small", "tell me")
    # The helper model's answer ("echo: rewrite tell me") became the prompt.
    assert answer.choices[0].message.content == "echo: echo: rewrite tell me"


def test_reserved_arguments_carry_the_right_contents(sdk, install, bob, bob_key, live):
    import json

    from valves.services import valves_update_user

    function = install("reserved_args_pipe", valves={"LABEL": "L1"})
    valves_update_user(user=bob, function=function, values={"nickname": "bobby"})
    client = openai.OpenAI(base_url=f"{live.url}/api", api_key=bob_key, max_retries=0)
    answer = client.chat.completions.create(
        model="reserved_args_pipe",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={
            "chat_id": "local:c9",  # a temporary chat (a chat named must exist)
            "id": "m9",
            "session_id": "s9",
            "files": [{"id": "f1"}],
        },
    )
    seen = json.loads(answer.choices[0].message.content)
    assert seen["user"] == {
        "id": str(bob.pk),
        "email": "bob@example.com",
        "name": "bob",
        "role": "user",
    }
    assert (seen["nickname"], seen["label"]) == ("bobby", "L1")
    assert seen["metadata"] == {
        "chat_id": "local:c9",
        "message_id": "m9",
        "session_id": "s9",
        "user_id": str(bob.pk),
        "filter_ids": [],
        "model_id": "reserved_args_pipe",
    }
    assert seen["model"] == "reserved_args_pipe" and seen["messages"] == 1
    assert seen["ids"] == ["local:c9", "s9", "m9"] and seen["files"] == [{"id": "f1"}]
    assert (seen["task"], seen["id"], seen["body_has_metadata"]) == (
        None,
        "reserved_args_pipe",
        False,
    )
    assert "No interactive session" in seen["dialog"]["error"]
    assert seen["tools"] == {}


def test_toggle_filters_run_only_when_switched_on(live, api_key, install, alice):

    install("toggle_web_search_filter", is_global=True)
    install("reserved_args_pipe")
    probe = (
        "class Filter:\n    def __init__(self):\n        self.toggle = True\n"
        "    def inlet(self, body):\n"
        "        body['messages'][-1]['content'] += '!'\n        return body\n"
    )
    function = function_create(user=alice, id="shout_toggle", content=probe)
    function_set_active(user=alice, function=function, active=True)
    function_set_global(user=alice, function=function, is_global=True)
    headers = {"Authorization": f"Bearer {api_key}"}
    models = httpx.get(f"{live.url}/api/models", headers=headers).json()["data"]
    toggles = {f["id"] for f in next(m for m in models if m["id"] == "fake-small")["filters"]}
    assert toggles == {"toggle_web_search_filter", "shout_toggle"}
    body = {"model": "fake-small", "messages": [{"role": "user", "content": "hey"}]}
    off = httpx.post(f"{live.url}/api/chat/completions", json=body, headers=headers).json()
    on = httpx.post(
        f"{live.url}/api/chat/completions",
        json=body | {"filter_ids": ["shout_toggle"]},
        headers=headers,
    ).json()
    assert off["choices"][0]["message"]["content"] == "echo: hey"
    assert on["choices"][0]["message"]["content"] == "echo: hey!"


def test_file_handler_filter_takes_the_files_away(live, api_key, install, upstream):
    install("file_handler_filter", is_global=True)
    headers = {"Authorization": f"Bearer {api_key}"}
    files = [{"type": "file", "file": {"filename": "notes.txt", "data": {"content": "NOTE"}}}]
    body = {
        "model": "fake-small",
        "messages": [{"role": "user", "content": "read"}],
        "files": files,
    }
    before = len(upstream.requests)
    assert (
        httpx.post(f"{live.url}/api/chat/completions", json=body, headers=headers).status_code
        == 200
    )
    sent = upstream.requests[before:][-1][2]
    assert "files" not in sent
    assert any("NOTE" in str(m.get("content")) for m in sent["messages"] if m["role"] == "system")


def test_dialog_action_without_a_browser_does_not_hang(live, api_key, install):
    install("dialog_action", is_global=True)
    headers = {"Authorization": f"Bearer {api_key}"}
    body = {
        "model": "fake-small",
        "messages": [{"id": "m1", "role": "assistant", "content": "x"}],
        "id": "m1",
        "chat_id": "c1",
    }
    response = httpx.post(
        f"{live.url}/api/chat/actions/dialog_action", json=body, headers=headers, timeout=10
    )
    assert response.status_code == 200
    # The plugin saw the "no session" answer and gave up: None, with the question asked.
    answer = response.json()
    assert answer["result"] is None
    assert [event["type"] for event in answer["events"]] == ["input"]


def test_outlet_rewrites_a_non_streamed_answer_and_completed_runs_outlets(live, api_key, alice):
    source = (
        "class Filter:\n    def outlet(self, body):\n"
        "        body['messages'][-1]['content'] += ' (checked)'\n        return body\n"
    )
    function = function_create(user=alice, id="checker", content=source)
    function_set_global(
        user=alice,
        function=function_set_active(user=alice, function=function, active=True),
        is_global=True,
    )
    headers = {"Authorization": f"Bearer {api_key}"}
    body = {"model": "fake-small", "messages": [{"role": "user", "content": "hi"}]}
    answer = httpx.post(f"{live.url}/api/chat/completions", json=body, headers=headers).json()
    assert answer["choices"][0]["message"]["content"] == "echo: hi (checked)"
    finished = body | {"messages": [*body["messages"], {"role": "assistant", "content": "done"}]}
    completed = httpx.post(f"{live.url}/api/chat/completed", json=finished, headers=headers).json()
    assert completed["messages"][-1]["content"] == "done (checked)"


def test_model_settings_attach_filters_to_one_model(live, api_key, install, alice):
    from functions.models import ModelSettings

    upper = install("upper_filter")  # active, not global
    settings = ModelSettings.objects.create(model_id="fake-large")
    settings.filters.add(upper)
    headers = {"Authorization": f"Bearer {api_key}"}

    def answer(model):
        body = {"model": model, "messages": [{"role": "user", "content": "abc"}]}
        response = httpx.post(f"{live.url}/api/chat/completions", json=body, headers=headers)
        return response.json()["choices"][0]["message"]["content"]

    assert answer("fake-large") == "echo: ABC"
    assert answer("fake-small") == "echo: abc"


@pytest.mark.parametrize(
    ("plugin", "expected"),
    [
        pytest.param("echo_pipe", "echo: one two three", id="str"),
        pytest.param("streaming_generator_pipe", "one two three", id="sync-generator"),
        pytest.param("dict_return_pipe", "A complete answer.", id="dict"),
        pytest.param("planner_action_and_pipe", None, id="async-str"),
    ],
)
def test_pipe_return_types_streamed_and_not(live, api_key, install, plugin, expected):
    install(plugin)
    client = openai.OpenAI(base_url=f"{live.url}/api/v1", api_key=api_key, max_retries=0)
    whole = ask(client, plugin, "one two three").choices[0].message.content
    pieces = streamed(client, plugin, "one two three")
    assert whole == pieces
    if expected is not None:
        assert whole == expected
    else:
        assert whole


def test_host_data_shims_work_on_either_executor(live, bob_key, alice, bob):
    import json

    source = (
        "import json\nfrom open_webui.models.users import Users\n"
        "from open_webui.models.memories import Memories\n"
        "class Pipe:\n    async def pipe(self, body, __user__):\n"
        "        me = await Users.get_user_by_id(__user__['id'])\n"
        "        plain = Users.get_user_by_id(__user__['id'])\n"
        f"        other = Users.get_user_by_id('{alice.pk}')\n"
        "        Memories.insert_new_memory(__user__['id'], 'likes tea')\n"
        "        mine = await Memories.get_memories_by_user_id(__user__['id'])\n"
        "        notes = [m.content for m in mine]\n"
        "        return json.dumps([me.email, plain.email, other, notes])\n"
    )
    function = function_create(user=alice, id="host_probe", content=source)
    function_set_active(user=alice, function=function, active=True)
    client = openai.OpenAI(base_url=f"{live.url}/api", api_key=bob_key, max_retries=0)
    answer = ask(client, "host_probe", "hi").choices[0].message.content
    assert json.loads(answer) == ["bob@example.com", "bob@example.com", None, ["likes tea"]]


# Wrong-typed bodies are a 4xx, never a 500 (Django's test client, no live server).

NULL_OR = lambda *types: {"null", *types}  # noqa: E731
MESSAGES = [{"role": "user", "content": "hi"}]
IDS = {"id": NULL_OR("string"), "chat_id": NULL_OR("string"), "session_id": NULL_OR("string")}
COMPLETION = {
    "model": "echo_pipe",
    "messages": MESSAGES,
    "stream": False,
    "id": "m1",
    "chat_id": "local:c1",
    "session_id": "s1",
    "metadata": {"filter_ids": []},
    "background_tasks": {"title_generation": False},
    "filter_ids": [],
    "tool_ids": [],
    "features": {},
    "files": [],
}
COMPLETION_FIELDS = {
    "model": {"string"},
    "messages": {"array"},
    "messages.0": {"object"},
    "messages.0.role": {"string"},
    "messages.0.content": NULL_OR("string", "array"),
    # true streams; the streamed path is covered by the live tests above.
    "stream": {"null", "bool"},
    **IDS,
    "metadata": NULL_OR("object"),
    "metadata.filter_ids": NULL_OR("array"),
    "background_tasks": NULL_OR("object"),
    "background_tasks.title_generation": {"bool"},
    "filter_ids": NULL_OR("array"),
    "tool_ids": NULL_OR("array"),
    "features": NULL_OR("object"),
    "files": NULL_OR("array"),
}
ACTION = {"model": "echo_pipe", "messages": MESSAGES, "id": "m1", "chat_id": "c1"}
ACTION_FIELDS = {"model": {"string"}, "messages": {"array"}, "messages.0": {"object"}, **IDS}
TYPED_BODIES = [
    case
    for case in [
        *typed_cases(COMPLETION, COMPLETION_FIELDS, "/api/chat/completions "),
        *typed_cases(COMPLETION, COMPLETION_FIELDS, "/api/chat/completed "),
        *typed_cases(ACTION, ACTION_FIELDS, "/api/chat/actions/ping_action "),
    ]
    # A streamed answer is read by the live tests above.
    if case.values[0].get("stream") is not True
]


@pytest.fixture
def chat_functions(make_function):
    make_function("echo_pipe", is_active=True)
    make_function("ping_action", is_active=True)


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "must_refuse"), TYPED_BODIES)
def test_wrong_typed_bodies_are_a_4xx_never_a_500(
    alice_client, chat_functions, request, body, must_refuse
):
    path = request.node.callspec.id.split(" ", 1)[0]
    response = alice_client.post(path, json.dumps(body), content_type="application/json")
    assert_refused_or_accepted(response, must_refuse)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/chat/completions", COMPLETION),
        ("/api/chat/completed", COMPLETION),
        ("/api/chat/actions/ping_action", ACTION),
    ],
)
def test_the_well_typed_bodies_those_cases_start_from_are_answered(
    alice_client, chat_functions, path, body
):
    response = alice_client.post(path, json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"), [("metadata", [1]), ("chat_id", {}), ("background_tasks", "x")]
)
@pytest.mark.parametrize("path", ["/api/chat/completions", "/v1/chat/completions"])
def test_a_wrong_type_is_a_422_naming_the_field(alice_client, chat_functions, path, field, value):
    body = {**COMPLETION, field: value}
    response = alice_client.post(path, json.dumps(body), content_type="application/json")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == field


@pytest.mark.django_db
def test_unknown_keys_reach_the_plugin_as_sent(alice_client, make_function):
    source = (
        "import json\nclass Pipe:\n    def pipe(self, body):\n"
        "        return json.dumps([body.get('temperature'), body.get('custom'),"
        " body['messages'][0].get('extra')])\n"
    )
    make_function("body_probe", content=source, is_active=True)
    body = {
        "model": "body_probe",
        "messages": [{"role": "user", "content": "hi", "extra": {"k": [1]}}],
        "temperature": 0.25,
        "custom": {"k": [2]},
    }
    response = alice_client.post(
        "/api/chat/completions", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    answer = response.json()["choices"][0]["message"]["content"]
    assert json.loads(answer) == [0.25, {"k": [2]}, {"k": [1]}]


# A lone surrogate is refused at the door, and is never blamed on the function.

SURROGATE_BODY = '{"model": "echo_pipe", "messages": [{"role": "user", "content": "hi \\ud800"}]}'


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/chat/completions", "/v1/chat/completions"])
def test_a_lone_surrogate_in_a_message_is_a_400_and_no_failure_of_the_function(
    alice_client, chat_functions, path
):
    from functions.models import FunctionHealth

    response = alice_client.post(path, SURROGATE_BODY, content_type="application/json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["messages.0.content"]
    assert not FunctionHealth.objects.filter(function_id="echo_pipe").exists()


@pytest.mark.django_db(transaction=True)
async def test_the_async_door_refuses_a_lone_surrogate_too(async_client, alice, chat_functions):
    from functions.models import FunctionHealth

    await async_client.aforce_login(alice)
    response = await async_client.post(
        "/api/chat/completions", SURROGATE_BODY, content_type="application/json"
    )

    assert response.status_code == 400
    assert "messages.0.content" in response.json()["detail"]
    assert not await FunctionHealth.objects.filter(function_id="echo_pipe").aexists()


def test_a_lone_surrogate_never_reaches_a_worker_or_the_health_record(live, api_key, install):
    from functions.models import FunctionHealth

    install("echo_pipe")
    response = httpx.post(
        f"{live.url}/api/chat/completions",
        content=SURROGATE_BODY.encode(),
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        timeout=30,
    )

    assert response.status_code == 400, response.text
    assert list(response.json()["errors"]) == ["messages.0.content"]
    assert not FunctionHealth.objects.filter(function_id="echo_pipe").exists()


def test_a_pipe_always_finds_stream_in_its_body(live, api_key, sdk, install):
    install("stream_flag_pipe")
    omitted = httpx.post(
        f"{live.url}/api/chat/completions",
        json={"model": "stream_flag_pipe", "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30,
    )
    assert omitted.json()["choices"][0]["message"]["content"] == "stream=False"
    assert streamed(sdk, "stream_flag_pipe", "x") == "stream=True"


# POST /api/v1/tasks/title/completions and /tags/completions: the same completion as
# chat, filters included, with __task__ set.

TASK_PIPE = """
import json

class Pipe:
    def pipe(self, body, __task__=None, __task_body__=None, __request__=None):
        prompt = body["messages"][-1]["content"]
        seen = [__task__, "FILTER SAW " + str(__task__) in prompt, "[x]" in prompt,
                (__task_body__ or {}).get("chat_id"), __request__.url.path.rsplit("/", 2)[1]]
        if __task__ == "title_generation":
            return json.dumps({"title": json.dumps(seen)})
        if __task__ == "tags_generation":
            return json.dumps({"tags": seen})
        return "answer"
"""
TASK_FILTER = """
class Filter:
    def inlet(self, body, __task__=None):
        last = body["messages"][-1]
        last["content"] = last["content"].replace("SECRET", "[x]") + " FILTER SAW " + str(__task__)
        return body
"""
TASK_BODY = {
    "model": "task_pipe",
    "messages": [{"role": "user", "content": "the SECRET moon"}],
    "chat_id": "c-1",
}
TASKS = "/api/v1/tasks"


@pytest.fixture
def task_functions(make_function):
    make_function("task_pipe", content=TASK_PIPE, is_active=True)
    make_function("task_filter", content=TASK_FILTER, is_active=True, is_global=True)


def task_post(client, path: str, body: dict):
    return client.post(path, json.dumps(body), content_type="application/json")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        pytest.param(
            "title",
            "title",
            '["title_generation", true, true, "c-1", "title"]',
            id="title_generation",
        ),
        pytest.param(
            "tags", "tags", ["tags_generation", True, True, "c-1", "tags"], id="tags_generation"
        ),
    ],
)
def test_a_task_runs_through_the_filters_with_task_set(
    alice_client, task_functions, path, key, expected
):
    response = task_post(alice_client, f"{TASKS}/{path}/completions", TASK_BODY)

    assert response.status_code == 200, response.content
    answer = response.json()
    # Open WebUI's shape: a chat.completion whose content is the JSON the prompt asks for.
    assert answer["object"] == "chat.completion"
    assert json.loads(answer["choices"][0]["message"]["content"]) == {key: expected}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["title", "tags"])
@pytest.mark.parametrize(
    ("persona", "expected"),
    [("superuser", 200), ("viewer", 200), ("bare_staff", 200), ("user", 200), (None, 401)],
)
def test_task_permission_matrix(persona_login, task_functions, client, path, persona, expected):
    caller = persona_login("auth.view_user")(persona) if persona else client

    response = task_post(caller, f"{TASKS}/{path}/completions", TASK_BODY)

    assert response.status_code == expected, response.content


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["title", "tags"])
def test_a_task_for_a_model_the_user_may_not_use_is_a_403(bob_client, task_functions, path):
    from django.contrib.auth.models import Group

    from functions.models import ModelSettings

    settings = ModelSettings.objects.create(model_id="task_pipe")
    settings.allowed_groups.add(Group.objects.create(name="insiders"))

    response = task_post(bob_client, f"{TASKS}/{path}/completions", TASK_BODY)

    assert response.status_code == 403
    assert "task_pipe" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(TASK_BODY | {"model": "nope"}, 404, id="unknown-model"),
        pytest.param({"messages": TASK_BODY["messages"]}, 422, id="no-model"),
        pytest.param({"model": "task_pipe"}, 422, id="no-messages"),
        pytest.param(TASK_BODY | {"messages": "hi"}, 422, id="messages-not-a-list"),
    ],
)
def test_bad_task_requests_are_a_4xx(alice_client, task_functions, body, expected):
    response = task_post(alice_client, f"{TASKS}/title/completions", body)

    assert response.status_code == expected, response.content


@pytest.mark.django_db
def test_task_endpoints_are_in_the_openapi_docs_with_their_statuses(alice_client):
    paths = alice_client.get("/api/openapi.json").json()["paths"]

    for path in ("title", "tags"):
        responses = paths[f"{TASKS}/{path}/completions"]["post"]["responses"]
        assert {"200", "400", "401", "403", "404"} <= set(responses)


def test_request_reaches_a_worker_process_and_generate_chat_completion(install, bob, bob_key, live):
    install("echo_pipe")
    install("request_relay_pipe")
    client = openai.OpenAI(
        base_url=f"{live.url}/api",
        api_key=bob_key,
        max_retries=0,
        timeout=30,
        default_headers={"X-Relay-Test": "yes", "Cookie": "theme=dark; sessionid=s-secret"},
    )
    client.models.list()  # MODELS is the last listing, as in Open WebUI
    seen = json.loads(ask(client, "request_relay_pipe", "hi").choices[0].message.content)
    # The pipe ran in a sandboxed worker; generate_chat_completion(__request__, ...)
    # went over the host channel and answered through echo_pipe.
    assert seen["answer"] == "echo: relay"
    assert (seen["method"], seen["path"]) == ("POST", "/api/chat/completions")
    assert seen["base_url"] == f"{live.url}/"
    assert seen["custom_header"] == "yes" and seen["cookies"] == {"theme": "dark"}
    assert seen["state_user"] == {"id": str(bob.pk), "email": "bob@example.com"}
    assert seen["config"]["WEBUI_URL"] == live.url
    assert seen["config"]["OPENAI_API_KEYS"] == [""]
    assert {"echo_pipe", "request_relay_pipe"} <= set(seen["models"])
    assert seen["body_keys"] == ["messages", "model", "stream"]
    dumped = json.dumps(seen)
    assert bob_key not in dumped and "s-secret" not in dumped
    assert "authorization" not in {k.lower() for k in seen["headers"]}
