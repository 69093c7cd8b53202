"""chat.schemas: typed where the server reads, open everywhere else."""

import pytest
from pydantic import ValidationError

from chat.schemas import ActionIn, ChatCompletionIn


def test_body_is_the_request_as_sent_with_unknown_keys_and_without_defaults():
    sent = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi", "id": "x1"}],
        "params": {"seed": 1},
        "metadata": {"filter_ids": ["f"], "variables": {"a": "b"}},
    }
    assert ChatCompletionIn.model_validate(sent).body() == sent


def test_content_may_be_text_parts_or_absent():
    parts = [{"type": "text", "text": "hi"}]
    body = ChatCompletionIn.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": parts}, {"role": "assistant"}]}
    ).body()
    assert body["messages"] == [{"role": "user", "content": parts}, {"role": "assistant"}]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model", ""),
        ("messages", {"role": "user"}),
        ("metadata", [1]),
        ("chat_id", {}),
        ("background_tasks", "x"),
        ("filter_ids", "f"),
    ],
)
def test_wrong_types_name_the_field(field, value):
    with pytest.raises(ValidationError) as caught:
        ChatCompletionIn.model_validate({"model": "m", "messages": [], field: value})
    assert caught.value.errors()[0]["loc"][0] == field


def test_an_action_body_needs_nothing_but_keeps_what_it_gets():
    assert ActionIn.model_validate({}).body() == {}
    assert ActionIn.model_validate({"id": "m1", "x": 1}).body() == {"id": "m1", "x": 1}
