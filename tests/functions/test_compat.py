"""The open_webui compatibility package: pure helpers behave as Open WebUI's do.

Imported through `functions.compat.open_webui`, so these tests do not depend on
the plugin import finder being installed.
"""

import importlib.util
import time
from datetime import UTC, timedelta
from pathlib import Path

import pytest

from functions.compat import open_webui
from functions.compat.open_webui import env
from functions.compat.open_webui.constants import ERROR_MESSAGES, MESSAGES, TASKS
from functions.compat.open_webui.utils import misc


def user(content):
    return {"role": "user", "content": content}


def assistant(content):
    return {"role": "assistant", "content": content}


def system(content):
    return {"role": "system", "content": content}


def image_part(url="data:image/png;base64,AAAA"):
    return {"type": "image_url", "image_url": {"url": url}}


def text_part(text):
    return {"type": "text", "text": text}


CHAT = [system("Be brief."), user("first"), assistant("reply one"), user("second")]


def test_package_reports_the_contract_version_it_implements():
    assert open_webui.__version__ == "0.11.0"
    assert env.VERSION == "0.11.0"


# get_content_from_message / get_last_*


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(user("plain text"), "plain text", id="string-content"),
        pytest.param(user([image_part(), text_part("caption")]), "caption", id="list-content"),
        pytest.param(
            user([text_part("first part"), text_part("second part")]),
            "first part",
            id="list-content-first-text-part-like-upstream",
        ),
        pytest.param(user([image_part()]), None, id="list-without-text"),
        pytest.param({"role": "user"}, None, id="no-content-key"),
        pytest.param(user(""), "", id="empty-string"),
    ],
)
def test_get_content_from_message(message, expected):
    assert misc.get_content_from_message(message) == expected


def test_get_last_user_message_returns_the_latest_user_text():
    assert misc.get_last_user_message(CHAT) == "second"


def test_get_last_user_message_reads_text_from_a_multimodal_message():
    messages = [user("old"), user([text_part("what is this?"), image_part()])]
    assert misc.get_last_user_message(messages) == "what is this?"


def test_get_last_user_message_item_keeps_the_image_parts():
    message = user([text_part("look"), image_part()])
    assert misc.get_last_user_message_item([user("old"), message]) is message


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param([], id="empty"),
        pytest.param([system("s"), assistant("a")], id="no-user-message"),
    ],
)
def test_get_last_user_message_is_none_without_a_user_message(messages):
    assert misc.get_last_user_message(messages) is None
    assert misc.get_last_user_message_item(messages) is None


def test_get_last_assistant_message_and_item():
    messages = [*CHAT, assistant([text_part("reply two")])]
    assert misc.get_last_assistant_message(messages) == "reply two"
    assert misc.get_last_assistant_message_item(messages) is messages[-1]
    assert misc.get_last_assistant_message([user("hi")]) is None
    assert misc.get_last_assistant_message_item([]) is None


def test_messages_without_a_role_are_skipped_rather_than_raising():
    messages = [{"content": "orphan"}, user("kept")]
    assert misc.get_last_user_message(messages) == "kept"
    assert misc.get_system_message(messages) is None


def test_get_messages_content_formats_role_and_text_lines():
    assert misc.get_messages_content([user("hi"), assistant([text_part("hello")])]) == (
        "USER: hi\nASSISTANT: hello"
    )
    assert misc.get_messages_content([]) == ""


# get_message_list


def history():
    return {
        "root": {"id": "root", "parentId": None, "role": "user", "content": "q1"},
        "a1": {"id": "a1", "parentId": "root", "role": "assistant", "content": "r1"},
        "u2": {"id": "u2", "parentId": "a1", "role": "user", "content": "q2"},
        "branch": {"id": "branch", "parentId": "root", "role": "assistant", "content": "alt"},
    }


def test_get_message_list_follows_parent_links_from_the_root():
    assert [m["id"] for m in misc.get_message_list(history(), "u2")] == ["root", "a1", "u2"]
    assert [m["id"] for m in misc.get_message_list(history(), "branch")] == ["root", "branch"]


@pytest.mark.parametrize(
    ("messages_map", "message_id"),
    [
        pytest.param({}, "u2", id="empty-map"),
        pytest.param(None, "u2", id="none-map"),
        pytest.param(history(), "missing", id="unknown-id"),
        pytest.param(history(), None, id="none-id"),
    ],
)
def test_get_message_list_is_empty_when_nothing_matches(messages_map, message_id):
    assert misc.get_message_list(messages_map, message_id) == []


def test_get_message_list_stops_on_a_parent_cycle():
    looped = {
        "a": {"id": "a", "parentId": "b", "content": "x"},
        "b": {"id": "b", "parentId": "a", "content": "y"},
    }
    assert [m["id"] for m in misc.get_message_list(looped, "a")] == ["b", "a"]


def test_get_message_list_stops_at_a_dangling_parent():
    orphan = {"u": {"id": "u", "parentId": "gone", "content": "x"}}
    assert misc.get_message_list(orphan, "u") == [orphan["u"]]


# system messages


def test_get_system_message_returns_the_first_one():
    messages = [user("u"), system("one"), system("two")]
    assert misc.get_system_message(messages) is messages[1]
    assert misc.get_system_message([user("u")]) is None


def test_remove_system_message_drops_all_and_leaves_the_input_alone():
    messages = [system("one"), user("u"), system("two")]
    assert misc.remove_system_message(messages) == [user("u")]
    assert len(messages) == 3


def test_pop_system_message_splits_system_from_the_rest():
    found, rest = misc.pop_system_message(CHAT)
    assert found == system("Be brief.")
    assert rest == CHAT[1:]


def test_pop_system_message_without_system_message():
    messages = [user("u")]
    assert misc.pop_system_message(messages) == (None, messages)
    assert misc.pop_system_message([]) == (None, [])


def test_add_or_update_system_message_inserts_one_first():
    messages = [user("u")]
    result = misc.add_or_update_system_message("You are terse.", messages)
    assert result is messages
    assert messages == [system("You are terse."), user("u")]


def test_add_or_update_system_message_prepends_by_default_and_appends_on_request():
    messages = [system("base")]
    misc.add_or_update_system_message("before", messages)
    misc.add_or_update_system_message("after", messages, append=True)
    assert messages == [system("before\nbase\nafter")]


def test_add_or_update_system_message_only_updates_a_leading_system_message():
    messages = [user("u"), system("late")]
    misc.add_or_update_system_message("new", messages)
    assert messages == [system("new"), user("u"), system("late")]


def test_add_or_update_system_message_edits_text_parts_of_list_content():
    messages = [{"role": "system", "content": [text_part("base")]}]
    misc.add_or_update_system_message("extra", messages, append=True)
    assert messages[0]["content"] == [text_part("base\nextra")]


def test_replace_system_message_content():
    messages = [system("old"), user("u")]
    assert misc.replace_system_message_content("new", messages)[0] == system("new")


# user and assistant message editing


def test_add_or_update_user_message_appends_to_a_trailing_user_message():
    messages = [user("question")]
    misc.add_or_update_user_message("context", messages)
    assert messages == [user("question\ncontext")]
    misc.add_or_update_user_message("first", messages, append=False)
    assert messages == [user("first\nquestion\ncontext")]


def test_add_or_update_user_message_adds_one_after_an_assistant_message():
    messages = [assistant("a")]
    misc.add_or_update_user_message("u", messages)
    assert messages == [assistant("a"), user("u")]


def test_prepend_to_first_user_message_content_handles_both_content_shapes():
    messages = [system("s"), user("one"), user("two")]
    misc.prepend_to_first_user_message_content("ctx", messages)
    assert messages[1:] == [user("ctx\none"), user("two")]

    multimodal = [user([image_part(), text_part("describe")])]
    misc.prepend_to_first_user_message_content("ctx", multimodal)
    assert multimodal[0]["content"] == [image_part(), text_part("ctx\ndescribe")]


def test_prepend_to_first_user_message_content_without_user_message_changes_nothing():
    messages = [system("s")]
    assert misc.prepend_to_first_user_message_content("ctx", messages) == [system("s")]


def test_append_or_update_assistant_message():
    messages = [user("u")]
    misc.append_or_update_assistant_message("part 1", messages)
    misc.append_or_update_assistant_message("part 2", messages)
    assert messages == [user("u"), assistant("part 1\npart 2")]


# OpenAI templates


def test_chunk_template_with_content_has_the_openai_chunk_shape():
    before = int(time.time())
    chunk = misc.openai_chat_chunk_message_template("echo", "hello")
    assert chunk["object"] == "chat.completion.chunk"
    assert chunk["model"] == "echo"
    assert chunk["id"].startswith("echo-") and len(chunk["id"]) == len("echo-") + 36
    assert before <= chunk["created"] <= int(time.time())
    assert chunk["choices"] == [
        {"index": 0, "logprobs": None, "finish_reason": None, "delta": {"content": "hello"}}
    ]
    assert "usage" not in chunk


def test_chunk_template_without_content_is_the_finish_chunk():
    chunk = misc.openai_chat_chunk_message_template("m", usage={"total_tokens": 3})
    assert chunk["choices"][0]["delta"] == {}
    assert chunk["choices"][0]["finish_reason"] == "stop"
    assert chunk["usage"] == {"total_tokens": 3}


def test_chunk_template_carries_reasoning_and_tool_calls():
    calls = [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{}"}}]
    chunk = misc.openai_chat_chunk_message_template(
        "m", reasoning_content="thinking", tool_calls=calls
    )
    assert chunk["choices"][0]["delta"] == {"reasoning_content": "thinking", "tool_calls": calls}
    assert chunk["choices"][0]["finish_reason"] is None


def test_chunk_ids_are_unique():
    first = misc.openai_chat_chunk_message_template("m", "a")
    second = misc.openai_chat_chunk_message_template("m", "a")
    assert first["id"] != second["id"]


def test_completion_template_has_the_openai_completion_shape():
    completion = misc.openai_chat_completion_message_template("m", "done", usage={"x": 1})
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"] == {"role": "assistant", "content": "done"}
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert completion["usage"] == {"x": 1}


def test_completion_template_extras_and_missing_message():
    full = misc.openai_chat_completion_message_template(
        "m", "", reasoning_content="why", tool_calls=[{"id": "c"}]
    )
    assert full["choices"][0]["message"] == {
        "role": "assistant",
        "content": "",
        "reasoning_content": "why",
        "tool_calls": [{"id": "c"}],
    }
    empty = misc.openai_chat_completion_message_template("m")
    assert "message" not in empty["choices"][0]
    assert empty["choices"][0]["finish_reason"] == "stop"


# strings, hashes, paths


def test_get_gravatar_url_hashes_the_normalised_address():
    url = misc.get_gravatar_url("  Alice@Example.COM ")
    assert url == misc.get_gravatar_url("alice@example.com")
    digest = misc.calculate_sha256_string("alice@example.com")
    assert url == f"https://www.gravatar.com/avatar/{digest}?d=mp"


def test_calculate_sha256_string_known_value():
    assert misc.calculate_sha256_string("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


@pytest.mark.parametrize(
    ("email", "valid"),
    [
        ("bob@example.com", True),
        ("admin@localhost", True),
        ("bob@example", False),
        ("not-an-email", False),
        ("@example.com", False),
    ],
)
def test_validate_email_format(email, valid):
    assert misc.validate_email_format(email) is valid


def test_sanitize_filename():
    assert misc.sanitize_filename("My Report (final).PDF") == "my-report-finalpdf"
    assert misc.sanitize_filename("a   b\tc") == "a-b-c"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/app/data/docs/team/specs/file.pdf", ["team", "team/specs"]),
        ("/app/data/docs/file.pdf", []),
        ("/app/other/docs/file.pdf", []),
    ],
)
def test_extract_folders_after_data_docs(path, expected):
    assert misc.extract_folders_after_data_docs(path) == expected


# parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("-1", None, id="never-expires"),
        pytest.param("0", None, id="zero-means-none"),
        pytest.param("1h30m", timedelta(hours=1, minutes=30), id="hours-and-minutes"),
        pytest.param("2d", timedelta(days=2), id="days"),
        pytest.param("500ms", timedelta(milliseconds=500), id="milliseconds-not-minutes"),
        pytest.param("1w", timedelta(weeks=1), id="weeks"),
        pytest.param("1.5h", timedelta(minutes=90), id="fraction"),
        pytest.param("1h 15s", timedelta(hours=1, seconds=15), id="spaced"),
    ],
)
def test_parse_duration(text, expected):
    assert misc.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "1hr", "10", "h1"])
def test_parse_duration_rejects_text_that_is_not_number_unit_pairs(text):
    with pytest.raises(ValueError, match="Invalid duration"):
        misc.parse_duration(text)


# deep_update and is_string_allowed


def test_deep_update_merges_nested_dicts_in_place():
    base = {"a": 1, "nested": {"keep": True, "change": "old"}, "list": [1]}
    result = misc.deep_update(base, {"nested": {"change": "new", "add": 2}, "list": [2], "b": 3})
    assert result is base
    assert base == {
        "a": 1,
        "nested": {"keep": True, "change": "new", "add": 2},
        "list": [2],
        "b": 3,
    }


def test_deep_update_creates_missing_and_replaces_non_dict_branches():
    assert misc.deep_update({"x": "scalar"}, {"x": {"y": 1}, "z": {"w": 2}}) == {
        "x": {"y": 1},
        "z": {"w": 2},
    }


@pytest.mark.parametrize(
    ("string", "filter_list", "allowed"),
    [
        pytest.param("anything", None, True, id="no-list"),
        pytest.param("anything", [], True, id="empty-list"),
        pytest.param("docs.example.com", ["example.com"], True, id="suffix-allowed"),
        pytest.param("other.org", ["example.com"], False, id="not-in-allow-list"),
        pytest.param("bad.example.com", ["!bad.example.com"], False, id="blocked"),
        pytest.param("good.example.com", ["!bad.example.com"], True, id="block-only-list"),
        pytest.param(
            "bad.example.com", ["example.com", "! bad.example.com"], False, id="block-wins"
        ),
        pytest.param(["x.org", "docs.example.com"], ["example.com"], True, id="any-of-many"),
        pytest.param(["x.org", "bad.com"], ["!bad.com"], False, id="one-of-many-blocked"),
    ],
)
def test_is_string_allowed(string, filter_list, allowed):
    assert misc.is_string_allowed(string, filter_list) is allowed


# constants


def test_tasks_compare_equal_to_the_strings_pipes_receive():
    assert TASKS.TITLE_GENERATION == "title_generation"
    task = "title_generation"  # what a pipe finds in __task__
    assert task == TASKS.TITLE_GENERATION
    assert task in (TASKS.TITLE_GENERATION, TASKS.TAGS_GENERATION)
    assert str(TASKS.FOLLOW_UP_GENERATION) == "follow_up_generation"
    assert f"{TASKS.DEFAULT}" == "default"
    assert TASKS("memory_review") is TASKS.MEMORY_REVIEW
    assert {TASKS.QUERY_GENERATION: 1}["query_generation"] == 1


def test_tasks_cover_every_task_name_of_the_contract():
    names = {
        "default",
        "title_generation",
        "follow_up_generation",
        "tags_generation",
        "emoji_generation",
        "query_generation",
        "image_prompt_generation",
        "autocomplete_generation",
        "function_calling",
        "moa_response_generation",
        "context_compaction",
        "memory_review",
    }
    assert {task.value for task in TASKS} == names


def test_messages_are_strings_and_defaults_are_callable():
    assert ERROR_MESSAGES.NOT_FOUND == "We could not find what you're looking for :/"
    assert str(ERROR_MESSAGES.UNAUTHORIZED) == "401 Unauthorized"
    assert isinstance(ERROR_MESSAGES.ACCESS_PROHIBITED, str)
    assert ERROR_MESSAGES.DEFAULT() == "Something went wrong :/"
    assert ERROR_MESSAGES.DEFAULT("boom") == "[ERROR: boom]"
    assert ERROR_MESSAGES.MODEL_NOT_FOUND("gpt") == "Model 'gpt' was not found"
    assert MESSAGES.DEFAULT("ok") == "ok"


# env


def test_env_constants_plugins_read():
    assert env.WEBUI_NAME == "fnplatform"
    assert env.ENV == "prod"
    assert env.ENABLE_FORWARD_USER_INFO_HEADERS is False
    assert env.FORWARD_SESSION_INFO_HEADER_CHAT_ID == "X-OpenWebUI-Chat-Id"
    assert env.FORWARD_SESSION_INFO_HEADER_MESSAGE_ID == "X-OpenWebUI-Message-Id"
    assert env.OFFLINE_MODE is False
    assert env.BYPASS_MODEL_ACCESS_CONTROL is False
    assert isinstance(env.DATA_DIR, Path)
    assert env.DATA_DIR.is_absolute()


def test_src_log_levels_map_every_source_to_a_level_name():
    for source in ("MAIN", "MODELS", "OPENAI", "OLLAMA", "RAG", "COMFYUI", "WEBHOOK", "AUDIO"):
        assert env.SRC_LOG_LEVELS[source] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
    assert env.SRC_LOG_LEVELS["NOT_A_SOURCE"] == env.GLOBAL_LOG_LEVEL


def test_env_never_exposes_server_secrets():
    names = set(vars(env))
    assert not names & {"WEBUI_SECRET_KEY", "SECRET_KEY", "FNPLATFORM_SECRETS_KEY"}


def test_env_reads_timeouts_and_log_level_like_upstream(monkeypatch):
    monkeypatch.setenv("AIOHTTP_CLIENT_TIMEOUT", "")
    monkeypatch.setenv("AIOHTTP_CLIENT_TIMEOUT_MODEL_LIST", "not-a-number")
    monkeypatch.setenv("GLOBAL_LOG_LEVEL", "debug")
    monkeypatch.setenv("RAG_LOG_LEVEL", "bogus")
    monkeypatch.setenv("FNPLATFORM_DATA_DIR", "/srv/fn-data")
    fresh = reload_env()
    assert fresh.AIOHTTP_CLIENT_TIMEOUT is None
    assert fresh.AIOHTTP_CLIENT_TIMEOUT_MODEL_LIST == 10
    assert fresh.GLOBAL_LOG_LEVEL == "DEBUG"
    assert fresh.SRC_LOG_LEVELS["RAG"] == "DEBUG"
    assert str(fresh.DATA_DIR) == "/srv/fn-data"


def test_env_defaults(monkeypatch):
    for name in ("AIOHTTP_CLIENT_TIMEOUT", "GLOBAL_LOG_LEVEL", "LOG_LEVEL", "MAIN_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    fresh = reload_env()
    assert fresh.AIOHTTP_CLIENT_TIMEOUT == 300
    assert fresh.GLOBAL_LOG_LEVEL == "INFO"
    assert fresh.SRC_LOG_LEVELS["MAIN"] == "INFO"


def reload_env():
    """Execute env.py afresh into a throwaway module, leaving the shared one untouched."""
    spec = importlib.util.spec_from_file_location("_env_under_test", env.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# open_webui.utils.tools, utils.logger, utils.plugin and models.messages


def test_tool_specs_collapse_optional_types_and_leave_reserved_parameters_out():
    from typing import Literal

    from functions.compat.open_webui.utils import tools

    class Toolkit:
        def lookup(
            self,
            city: str,
            units: Literal["metric", "imperial"] = "metric",
            days: int | None = None,
            __user__: dict | None = None,
        ) -> str:
            """Weather for a city.

            :param city: where
            :return: a forecast
            """

    [spec] = tools.get_tools_specs(Toolkit())  # the 0.3-era name
    assert spec["description"] == "Weather for a city.\n"
    properties = spec["parameters"]["properties"]
    assert properties["city"] == {"description": "where", "type": "string"}
    assert properties["units"] == {
        "default": "metric",
        "enum": ["metric", "imperial"],
        "type": "string",
    }
    assert properties["days"] == {"type": "integer"}
    assert "__user__" not in properties and spec["parameters"]["required"] == ["city"]


def test_tool_helpers_that_fnplatform_lacks_say_so():
    import asyncio

    from functions.compat.open_webui.utils import plugin, tools

    # No built-in tools and no terminal servers: upstream's answers when none is there.
    assert tools.get_builtin_tools(None, {}, features={"web_search": True}) == {}
    assert asyncio.run(tools.get_terminal_tools(None, "term", None, {})) == {}
    with pytest.raises(NotImplementedError, match="declare requirements in the function's"):
        plugin.install_frontmatter_requirements("requests")
    with pytest.raises(LookupError, match="no saved toolkits yet"):
        plugin.load_tool_module_by_id("weather")
    with pytest.raises(Exception, match="No Tools class found"):
        plugin.load_tool_module_by_id("weather", content="x = 1\n")


def test_replace_imports_rewrites_the_pre_0_3_17_layout():
    from functions.compat.open_webui.utils.plugin import replace_imports

    assert replace_imports("from utils.misc import x\nfrom config import y\n") == (
        "from open_webui.utils.misc import x\nfrom open_webui.config import y\n"
    )


def test_loguru_formats_name_the_fields_and_carry_extras_as_json():
    from datetime import datetime

    from functions.compat.open_webui.utils import logger

    plain = logger.stdout_format({"extra": {}})
    assert "{level: <8}" in plain and "{message}" in plain and "extra_json" not in plain
    record = {"extra": {"user": "bob"}}
    assert logger.stdout_format(record).endswith(" - {extra[extra_json]}\n{exception}")
    assert record["extra"]["extra_json"] == '{"user": "bob"}'
    audit = {"extra": {"verb": "GET"}, "time": datetime(2026, 1, 1, tzinfo=UTC)}
    assert logger.file_format(audit) == "{extra[file_extra]}\n"
    assert '"verb": "GET"' in audit["extra"]["file_extra"]


def test_channel_message_forms_and_models_have_upstreams_shape():
    from functions.compat.open_webui.models.messages import MessageForm, MessageModel, Messages

    assert MessageForm(content="hi").reply_to_id is None
    model = MessageModel(id="m", user_id="1", content="hi", created_at=1, updated_at=1)
    assert model.is_pinned is False
    with pytest.raises(PermissionError, match=r"Messages\.delete_message_by_id is not available"):
        Messages.delete_message_by_id("m")
