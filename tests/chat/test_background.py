"""Title and tag generation: __task__ is set, global filters run for them too, and the
answers are parsed leniently."""

import pytest
from asgiref.sync import sync_to_async

from chat.services.background import TAGS_GENERATION, TITLE_GENERATION, parse_tags, parse_title
from chat.services.run import task_completion
from functions.services.functions import function_create, function_set_active, function_set_global

pytestmark = pytest.mark.django_db(transaction=True)

TASK_PIPE = """
import json

class Pipe:
    def pipe(self, body, __task__=None, __task_body__=None):
        if __task__ == "title_generation":
            return json.dumps({"title": "Talk About " + body["messages"][-1]["content"][-5:]})
        if __task__ == "tags_generation":
            return 'Sure: {"tags": ["Science", "Space"]}'
        return "answer"
"""
SEEN_FILTER = """
SEEN = []

class Filter:
    def inlet(self, body, __task__=None):
        SEEN.append(__task__)
        body["messages"][-1]["content"] = body["messages"][-1]["content"].replace("SECRET", "[x]")
        return body
"""


def install(alice, id, content, *, is_global=False):
    function = function_set_active(
        user=alice, function=function_create(user=alice, id=id, content=content), active=True
    )
    if is_global:
        function_set_global(user=alice, function=function, is_global=True)


async def test_title_and_tags_go_through_filters_with_the_task_set(alice, monkeypatch):
    from tests.support.inline import loaded_module

    monkeypatch.delenv("OPENAI_API_BASE_URLS", raising=False)
    await sync_to_async(install)(alice, "task_pipe", TASK_PIPE)
    await sync_to_async(install)(alice, "scrub", SEEN_FILTER, is_global=True)
    messages = [{"role": "user", "content": "the SECRET moon"}]

    async def answer(task):
        body = {"model": "task_pipe", "messages": messages}
        completion = await task_completion(user=alice, task=task, body=body)
        return completion["choices"][0]["message"]["content"]

    title = parse_title(await answer(TITLE_GENERATION))
    tags = parse_tags(await answer(TAGS_GENERATION))
    assert title.startswith("Talk About ")
    assert tags == ["Science", "Space"]
    seen = loaded_module("scrub").SEEN
    assert seen == ["title_generation", "tags_generation"]


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ('{"title": "Moon Talk"}', "Moon Talk"),
        ('Here: {"title": "Moon Talk"} done', "Moon Talk"),
        ('"Just a line"\nmore', "Just a line"),
        ("   ", ""),
    ],
)
def test_titles_are_read_from_json_or_the_first_line(text, title):
    assert parse_title(text) == title


def test_tags_are_at_most_three_short_strings():
    assert parse_tags('{"tags": ["a", "b", "c", "d"]}') == ["a", "b", "c"]
    assert parse_tags('{"tags": ["' + "x" * 50 + '"]}') == ["x" * 40]
    assert parse_tags("no json") == []
