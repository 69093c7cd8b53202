"""The fake upstream itself: it must behave like an OpenAI-compatible server."""

import json
import time

import httpx
import pytest

from tests.support.openai_server import FakeOpenAI

HELLO = {"model": "fake-small", "messages": [{"role": "user", "content": "hello there world"}]}


def post(fake: FakeOpenAI, body: dict, **headers: str) -> httpx.Response:
    return httpx.post(f"{fake.url}/chat/completions", json=body, headers=headers, timeout=10)


def stream_data(fake: FakeOpenAI, body: dict) -> list[str]:
    """Return the payload of every `data:` line of a streamed completion."""
    with httpx.stream("POST", f"{fake.url}/chat/completions", json=body, timeout=10) as response:
        assert response.headers["content-type"] == "text/event-stream"
        return [line[6:] for line in response.iter_lines() if line.startswith("data: ")]


def test_models_lists_fake_small_and_fake_large(fake_openai):
    response = httpx.get(f"{fake_openai.url}/models")

    assert response.status_code == 200
    assert response.json()["object"] == "list"
    assert [m["id"] for m in response.json()["data"]] == ["fake-small", "fake-large"]
    assert response.json()["data"][0]["object"] == "model"


def test_models_list_is_configurable():
    with FakeOpenAI(models=["alpha"]) as fake:
        response = httpx.get(f"{fake.url}/models")

    assert [m["id"] for m in response.json()["data"]] == ["alpha"]


def test_completion_echoes_the_last_user_message_with_word_usage(fake_openai):
    body = {
        "model": "fake-small",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "echo: first"},
            {"role": "user", "content": "hello there"},
        ],
    }

    data = post(fake_openai, body).json()

    assert data["object"] == "chat.completion"
    assert data["model"] == "fake-small"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "echo: hello there"}
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def test_completion_reads_the_text_parts_of_list_content(fake_openai):
    content = [
        {"type": "text", "text": "look at"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,xx"}},
        {"type": "text", "text": "this"},
    ]
    body = {"model": "fake-small", "messages": [{"role": "user", "content": content}]}

    data = post(fake_openai, body).json()

    assert data["choices"][0]["message"]["content"] == "echo: look at this"


def test_stream_sends_role_then_one_chunk_per_word_then_stop_and_done(fake_openai):
    events = stream_data(fake_openai, {**HELLO, "stream": True})

    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    words = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
    assert words == ["echo: ", "hello ", "there ", "world"]
    assert "".join(words) == "echo: hello there world"
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert "usage" not in chunks[-1]


def test_stream_ends_with_usage_when_asked(fake_openai):
    body = {**HELLO, "stream": True, "stream_options": {"include_usage": True}}

    events = stream_data(fake_openai, body)

    final = json.loads(events[-2])
    assert final["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


def test_stream_chunks_are_paced_by_chunk_delay():
    with FakeOpenAI(chunk_delay=0.05) as fake:
        stream_data(fake, {**HELLO, "stream": True})

    gaps = [b - a for a, b in zip(fake.chunk_sent_at, fake.chunk_sent_at[1:], strict=False)]
    # role, four words, the stop chunk, [DONE]: the server paces every chunk after the first.
    assert len(fake.chunk_sent_at) == 7
    assert all(gap >= 0.04 for gap in gaps[:-1])


@pytest.mark.parametrize("stream", [False, True])
def test_fake_error_model_answers_500_with_a_message(fake_openai, stream):
    response = post(fake_openai, {**HELLO, "model": "fake-error", "stream": stream})

    assert response.status_code == 500
    assert response.json()["error"]["message"] == "upstream exploded"


def test_fake_slow_model_waits_slow_seconds_before_answering():
    with FakeOpenAI(slow_seconds=0.3) as fake:
        started = time.monotonic()
        response = post(fake, {**HELLO, "model": "fake-slow"})

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-key"),
        pytest.param({"Authorization": "Bearer wrong"}, id="wrong-key"),
    ],
)
def test_require_key_refuses_requests_without_the_right_bearer_key(headers):
    with FakeOpenAI(require_key="sk-right") as fake:
        models = httpx.get(f"{fake.url}/models", headers=headers)
        chat = post(fake, HELLO, **headers)

    assert models.status_code == chat.status_code == 401
    assert models.json()["error"]["code"] == "invalid_api_key"


def test_require_key_accepts_the_right_bearer_key():
    with FakeOpenAI(require_key="sk-right") as fake:
        response = post(fake, HELLO, Authorization="Bearer sk-right")

    assert response.status_code == 200


def test_requests_are_recorded_with_path_headers_and_body(fake_openai):
    httpx.get(f"{fake_openai.url}/models", headers={"Authorization": "Bearer k"})
    post(fake_openai, HELLO)

    (models_path, models_headers, models_body), (chat_path, _, chat_body) = fake_openai.requests
    assert (models_path, models_body) == ("/v1/models", None)
    assert models_headers["Authorization"] == "Bearer k"
    assert (chat_path, chat_body) == ("/v1/chat/completions", HELLO)


def test_unknown_paths_answer_404(fake_openai):
    response = httpx.get(fake_openai.url.replace("/v1", "/nope"))

    assert response.status_code == 404


def test_a_streaming_client_that_leaves_early_is_noticed():
    long_text = " ".join(f"w{i}" for i in range(50))
    body = {
        "model": "fake-small",
        "stream": True,
        "messages": [{"role": "user", "content": long_text}],
    }
    with FakeOpenAI(chunk_delay=0.05) as fake:
        with httpx.stream("POST", f"{fake.url}/chat/completions", json=body) as response:
            next(response.iter_lines())

        assert fake.client_disconnected.wait(timeout=5)
        assert len(fake.chunk_sent_at) < 50
