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
        "chat_id": "local:c1",
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


STUB_FILTER = '''
class Filter:
    def inlet(self, body, __user__=None):
        return body

    def stream(self, event):
        """Pass through."""
        return event

    async def outlet(self, body):
        pass
'''
MARKING_FILTER = """
class Filter:
    def inlet(self, body):
        body["messages"][-1]["content"] += " marked"
        return body

    def stream(self, event):
        return event

    def outlet(self, body):
        return body
"""
WORDS_PIPE = """
class Pipe:
    def pipe(self, body):
        for word in body["messages"][-1]["content"].split():
            yield word + " "
"""


@pytest.mark.django_db(transaction=True)
async def test_a_completion_never_calls_a_no_op_hook(alice, monkeypatch):
    from asgiref.sync import sync_to_async

    from chat.services.run import completion_run
    from functions.services.executor import get_executor
    from functions.services.functions import (
        function_create,
        function_set_active,
        function_set_global,
    )
    from tests.support.inline import loaded_module

    def install(id, content, *, is_global=False):
        function = function_create(user=alice, id=id, content=content)
        function = function_set_active(user=alice, function=function, active=True)
        if is_global:
            function_set_global(user=alice, function=function, is_global=True)
        return function.current_revision.load_result["noop_hooks"]

    monkeypatch.delenv("OPENAI_API_BASE_URLS", raising=False)
    assert await sync_to_async(install)("words", WORDS_PIPE) == []
    assert await sync_to_async(install)("stub", STUB_FILTER, is_global=True) == [
        "inlet",
        "stream",
        "outlet",
    ]
    assert await sync_to_async(install)("marking", MARKING_FILTER, is_global=True) == [
        "stream",
        "outlet",
    ]
    body = {"model": "words", "messages": [{"role": "user", "content": "two words"}]}
    run = await completion_run(user=alice, body=body)
    assert {f.function_id for f in run.req.filters} == {"stub", "marking"}

    answer = await run.answer()

    assert answer["choices"][0]["message"]["content"] == "two words marked "
    served = {
        group: sum(worker.served for worker in pool.workers)
        for (group, _), pool in get_executor().pools().items()
    }
    # One call each for the pipe and the marking filter's inlet; its stream hook ran
    # for none of the three chunks, its outlet not at all, and the stub filter's code
    # never even loaded in a worker (nor was one started for it).
    assert served.get("function:words") == 1
    assert served.get("function:marking") == 1
    assert "function:stub" not in served
    assert loaded_module("stub") is None
    assert loaded_module("marking") is not None
