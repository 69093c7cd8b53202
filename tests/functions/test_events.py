import pytest

from functions.services.events import NO_SESSION, EventError, EventRecorder, parse_event


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        pytest.param(
            {"type": "status", "data": {"description": "x", "done": False}}, "status", id="status"
        ),
        pytest.param(
            {"type": "chat:message:delta", "data": {"content": "x"}}, "message", id="delta-alias"
        ),
        pytest.param(
            {"type": "chat:message", "data": {"content": "x"}}, "replace", id="replace-alias"
        ),
        pytest.param(
            {"type": "citation", "data": {"document": ["d"]}}, "source", id="citation-alias"
        ),
        pytest.param(
            {"type": "chat:message:files", "data": {"files": []}}, "files", id="files-alias"
        ),
        pytest.param(
            {"type": "notification", "data": {"type": "error", "content": "x"}},
            "notification",
            id="notification",
        ),
        pytest.param(
            {"type": "input", "data": {"title": "t", "placeholder": "p"}}, "input", id="input"
        ),
        pytest.param({"type": "chat:title", "data": "A title"}, "chat:title", id="free-form"),
    ],
)
def test_known_events_are_validated_and_canonical(raw, kind):
    event = parse_event(raw)
    assert (event.type, event.known, event.original_type) == (kind, True, raw["type"])


def test_extra_keys_are_kept():
    event = parse_event({"type": "status", "data": {"description": "x", "action": "web_search"}})
    assert event.data["action"] == "web_search"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({"type": "message", "data": {}}, id="message-without-content"),
        pytest.param(
            {"type": "notification", "data": {"type": "loud", "content": "x"}}, id="bad-level"
        ),
        pytest.param({"data": {}}, id="no-type"),
        pytest.param("status", id="not-a-dict"),
    ],
)
def test_malformed_events_are_rejected_with_a_reason(raw):
    with pytest.raises(EventError):
        parse_event(raw)


def test_unknown_types_pass_through():
    event = parse_event({"type": "my:custom", "data": {"x": 1}})
    assert (event.type, event.data, event.known) == ("my:custom", {"x": 1}, False)


async def test_recorder_keeps_events_and_answers_calls_without_a_session():
    recorder = EventRecorder(function_id="f")
    await recorder.emit({"type": "status", "data": {"description": "a"}})
    await recorder.emit({"type": "message", "data": {}})
    answer = await recorder.call({"type": "input", "data": {"title": "Name?"}})
    assert answer == NO_SESSION
    assert [e.type for e in recorder.events] == ["status", "input"]
    assert len(recorder.rejected) == 1
