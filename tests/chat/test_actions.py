"""Action results: plain values come back as they are; HTML becomes an embed."""

import pytest

from chat.services.actions import ActionRequest, perform_action
from functions.services.context import CallContext
from functions.services.events import EventRecorder
from tests.support.inline import object_call, seed_worker


@pytest.fixture(autouse=True)
def _plugin_objects(monkeypatch):
    seed_worker(monkeypatch)


class HTMLResponse:
    """Shaped like starlette's HTMLResponse (the plugin side imports fastapi's)."""

    media_type = "text/html"

    def __init__(self, content: str, headers: dict | None = None) -> None:
        self.body = content.encode()
        self.headers = headers or {}


def request_for(result) -> ActionRequest:
    class Action:
        async def action(self, body):
            return result

    recorder = EventRecorder()
    context = CallContext(user={"id": "1"}, event_emitter=recorder.emit, event_call=recorder.call)
    return ActionRequest(object_call("a", Action()), None, {"id": "m1"}, context, recorder)


@pytest.mark.parametrize(
    "result",
    [
        pytest.param(
            HTMLResponse("<b>card</b>", {"Content-Disposition": "inline"}), id="html-response"
        ),
        pytest.param(("<b>card</b>", {"Content-Disposition": "inline"}), id="html-tuple"),
        pytest.param((HTMLResponse("<b>card</b>"), {"context": 1}), id="response-and-context"),
    ],
)
async def test_html_results_become_embeds(result):
    req = request_for(result)
    assert await perform_action(req) == {"status": True, "embeds": ["<b>card</b>"]}
    assert [(e.type, e.data["embeds"]) for e in req.recorder.events] == [
        ("embeds", ["<b>card</b>"])
    ]


@pytest.mark.parametrize("result", [{"content": "pong"}, "text", None, ["a", "b"]])
async def test_other_results_are_returned_unchanged(result):
    req = request_for(result)
    assert await perform_action(req) == result
    assert req.recorder.events == []
