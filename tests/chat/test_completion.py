"""chat.services.completion: the bodies plugins see, shaped as Open WebUI shapes them."""

import json

import pytest

from chat.services.completion import apply_params

BODY_PROBE = (
    "import json\nclass Pipe:\n    def pipe(self, body):\n"
    "        return json.dumps({'keys': sorted(body), 'stream': body['stream'],"
    " 'temperature': body.get('temperature'), 'top_k': body.get('top_k')})\n"
)


def test_params_are_flattened_without_open_webuis_own_keys():
    body = {
        "model": "m",
        "temperature": 1.0,
        "params": {
            "temperature": 0.2,
            "seed": None,
            "stream_response": True,
            "function_calling": "native",
            "system": "be brief",
            "custom_params": {"top_k": "5", "note": "not json"},
        },
    }
    assert apply_params(body) == {"model": "m", "temperature": 0.2, "top_k": 5, "note": "not json"}


def test_a_body_without_params_is_left_as_it_is():
    body = {"model": "m", "params": "odd"}
    assert apply_params(body) is body


@pytest.mark.django_db
@pytest.mark.parametrize("stream", [None, False])
def test_a_pipe_body_is_open_webuis(alice_client, make_function, stream):
    make_function("body_probe", content=BODY_PROBE, is_active=True)
    body = {
        "model": "body_probe",
        "messages": [{"role": "user", "content": "hi"}],
        "params": {"temperature": 0.3, "custom_params": {"top_k": "4"}},
        "chat_id": "c1",
        "id": "m1",
        "session_id": "s1",
        "filter_ids": [],
        "background_tasks": {},
        "parent_id": "p1",
        "model_item": {},
        "tool_ids": [],
        "features": {},
        "files": [],
        "variables": {},
        "metadata": {"x": 1},
    }
    if stream is not None:
        body["stream"] = stream
    response = alice_client.post(
        "/api/chat/completions", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    seen = json.loads(response.json()["choices"][0]["message"]["content"])
    assert seen == {
        "keys": ["messages", "model", "stream", "temperature", "top_k"],
        "stream": False,
        "temperature": 0.3,
        "top_k": 4,
    }
