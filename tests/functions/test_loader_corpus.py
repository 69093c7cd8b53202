"""Every community-shaped file in tests/plugins/ loads (or fails) as its README says."""

import pytest

from functions.services.loader import SourceError, load_source
from tests.conftest import read_plugin

LOADS = {
    # name: (kind, manifold, toggle, file_handler, has_valves, has_user_valves, hooks)
    "echo_pipe": ("pipe", False, False, False, True, False, {"pipe": "sync"}),
    "upper_filter": (
        "filter",
        False,
        False,
        False,
        True,
        False,
        {"inlet": "async", "outlet": "sync", "stream": "sync"},
    ),
    "ping_action": ("action", False, False, False, True, False, {"action": "async"}),
    "openai_manifold": ("pipe", True, False, False, True, False, {"pipe": "sync", "pipes": "sync"}),
    "anthropic_manifold_async": (
        "pipe",
        True,
        False,
        False,
        True,
        False,
        {"pipe": "async generator", "pipes": "async"},
    ),
    "list_manifold": ("pipe", True, False, False, True, False, {"pipe": "sync", "pipes": "list"}),
    "context_clip_filter": ("filter", False, False, False, True, True, {"inlet": "sync"}),
    "max_turns_filter": (
        "filter",
        False,
        False,
        False,
        True,
        True,
        {"inlet": "sync", "outlet": "sync"},
    ),
    "toggle_web_search_filter": ("filter", False, True, False, True, False, {"inlet": "async"}),
    "file_handler_filter": ("filter", False, False, True, True, False, {"inlet": "sync"}),
    "multi_action": ("action", False, False, False, True, False, {"action": "async"}),
    "dialog_action": ("action", False, False, False, True, True, {"action": "async"}),
    "legacy_imports_pipe": ("pipe", False, False, False, True, False, {"pipe": "sync"}),
    "env_secret_pipe": ("pipe", False, False, False, True, False, {"pipe": "sync"}),
    "planner_action_and_pipe": ("pipe", False, False, False, True, False, {"pipe": "async"}),
    "file_reading_pipe": ("pipe", False, False, False, True, False, {"pipe": "sync"}),
    "crlf_frontmatter_pipe": ("pipe", False, False, False, True, False, {"pipe": "sync"}),
    "streaming_generator_pipe": ("pipe", False, False, False, True, False, {"pipe": "generator"}),
    "dict_return_pipe": ("pipe", False, False, False, True, False, {"pipe": "sync"}),
    "async_pipe_with_events": ("pipe", False, False, False, True, True, {"pipe": "async"}),
    "create_model_user_valves_pipe": (
        "pipe",
        True,
        False,
        False,
        True,
        True,
        {"pipe": "sync", "pipes": "sync"},
    ),
}

FAILS = {
    # name: (code, error type, line, fragment of the message)
    "broken_syntax": ("syntax_error", "SyntaxError", 20, "was never closed"),
    "no_plugin_class": ("no_plugin_class", "NoPluginClass", None, "Tools file"),
    "missing_hook_pipe": ("missing_hook", "MissingHook", None, "pipe()"),
    "missing_hook_filter": ("missing_hook", "MissingHook", None, "inlet()"),
    "missing_hook_action": ("missing_hook", "MissingHook", None, "action()"),
    "import_error": ("import_error", "ModuleNotFoundError", 8, "definitely_not_installed_pkg"),
    "missing_openwebui_import": ("import_error", "ModuleNotFoundError", 9, "open_webui.routers"),
    "init_raises": ("init_error", "ValueError", 18, "missing configuration"),
    "requirements_missing": (
        "requirements_missing",
        "RequirementsNotInstalled",
        None,
        "definitely-not-installed-pkg>=1.0,<2",
    ),
}


def test_the_corpus_has_at_least_ten_real_world_files():
    assert len(LOADS) >= 10


@pytest.mark.parametrize("name", sorted(LOADS))
def test_plugin_loads_with_the_right_kind_and_features(name, tmp_path):
    kind, manifold, toggle, file_handler, valves, user_valves, hooks = LOADS[name]
    with load_source(read_plugin(name), function_id=name, source_dir=tmp_path) as loaded:
        report = loaded.report
        found = (report.kind, report.manifold, report.toggle, report.file_handler)
        assert found == (kind, manifold, toggle, file_handler)
        assert (report.has_valves, report.has_user_valves) == (valves, user_valves)
        assert report.hooks == hooks
        assert report.warnings == []
        assert report.frontmatter.get("title")


@pytest.mark.parametrize("name", sorted(FAILS))
def test_plugin_fails_with_a_clear_error(name, tmp_path):
    code, error_type, line, fragment = FAILS[name]
    with pytest.raises(SourceError) as info:
        load_source(read_plugin(name), function_id=name, source_dir=tmp_path)
    detail = info.value.detail
    assert (detail["code"], detail["type"], detail["line"]) == (code, error_type, line)
    assert fragment in detail["message"]


def test_multi_action_reports_its_buttons():
    with load_source(read_plugin("multi_action")) as loaded:
        assert [a["id"] for a in loaded.report.sub_actions] == ["summarize", "translate"]


def test_crlf_file_keeps_its_bytes_and_frontmatter():
    source = read_plugin("crlf_frontmatter_pipe")
    assert source.startswith("\ufeff") and "\r\n" in source
    with load_source(source) as loaded:
        assert loaded.report.frontmatter["title"] == "CRLF Pipe"
        with open(loaded.module.__file__, newline="") as handle:
            assert handle.read() == source


def test_requirements_with_a_version_range_survive_parsing():
    with pytest.raises(SourceError) as info:
        load_source(read_plugin("requirements_missing"))
    assert "definitely-not-installed-pkg>=1.0,<2" in info.value.detail["message"]
    assert "httpx" not in info.value.detail["message"]  # installed, so not listed as missing


def test_create_model_user_valves_are_found():
    with load_source(read_plugin("create_model_user_valves_pipe")) as loaded:
        assert loaded.user_valves_class is not None
