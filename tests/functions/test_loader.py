import sys
import textwrap
from pathlib import Path

import pytest

from functions.services.loader import SourceError, check_source, load_source


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


PIPE = src(
    '''
    """
    title: Inline Pipe
    required_open_webui_version: 0.5.0
    """
    from pydantic import BaseModel, Field

    class Pipe:
        class Valves(BaseModel):
            PREFIX: str = Field(default=">> ")

        class UserValves(BaseModel):
            shout: bool = False

        def __init__(self):
            self.valves = self.Valves()

        def pipe(self, body: dict) -> str:
            return self.valves.PREFIX + body["messages"][-1]["content"]
    '''
)


def load_error(source: str) -> dict:
    with pytest.raises(SourceError) as info:
        load_source(source, function_id="broken")
    return info.value.detail


def test_loads_a_pipe_and_reports_its_features(tmp_path):
    with load_source(PIPE, function_id="inline", source_dir=tmp_path) as loaded:
        report = loaded.report
        assert report.kind == "pipe"
        assert report.class_name == "Pipe"
        assert report.has_valves and report.has_user_valves
        assert not report.manifold
        assert report.hooks == {"pipe": "sync"}
        assert report.frontmatter["title"] == "Inline Pipe"
        assert report.required_open_webui_version == "0.5.0"
        assert report.warnings == []
        assert loaded.valves_class.__name__ == "Valves"
        assert loaded.instance.pipe({"messages": [{"content": "hi"}]}) == ">> hi"


def test_module_file_is_real_and_holds_the_exact_source(tmp_path):
    source = PIPE.replace("\n", "\r\n")
    with load_source(source, function_id="filetest", source_dir=tmp_path) as loaded:
        path = Path(loaded.module.__file__)
        assert path.read_bytes() == source.encode()
        assert loaded.module.__name__ == "function_filetest"
        assert sys.modules["function_filetest"] is loaded.module
    assert not path.exists()
    assert "function_filetest" not in sys.modules


def test_source_can_read_its_own_file_at_import_time(tmp_path):
    source = src(
        """
        SELF = open(__file__).read()

        class Pipe:
            def pipe(self, body):
                return SELF
        """
    )
    with load_source(source, source_dir=tmp_path) as loaded:
        assert loaded.instance.pipe({}) == source


def test_pipe_wins_over_filter_and_action():
    source = src(
        """
        class Action:
            def action(self, body): ...
        class Filter:
            def inlet(self, body): return body
        class Pipe:
            def pipe(self, body): return "p"
        """
    )
    assert check_source(source).kind == "pipe"


def test_filter_wins_over_action():
    source = (
        "class Action:\n    def action(self, body): ...\n"
        "class Filter:\n    def outlet(self, body): return body\n"
    )
    assert check_source(source).kind == "filter"


@pytest.mark.parametrize(
    ("pipes", "expected"),
    [
        pytest.param("    pipes = [{'id': 'a', 'name': 'A'}]\n", "list", id="list"),
        pytest.param("    def pipes(self):\n        return []\n", "sync", id="sync"),
        pytest.param("    async def pipes(self):\n        return []\n", "async", id="async"),
    ],
)
def test_manifold_forms(pipes, expected):
    source = f"class Pipe:\n{pipes}    def pipe(self, body):\n        return ''\n"
    report = check_source(source)
    assert report.manifold
    assert report.hooks["pipes"] == expected


def test_filter_features_and_hook_kinds():
    source = src(
        """
        class Filter:
            def __init__(self):
                self.toggle = True
                self.file_handler = True
                self.icon = "data:image/svg+xml;base64,AAAA"
            async def inlet(self, body: dict) -> dict:
                return body
            def stream(self, event: dict) -> dict:
                return event
        """
    )
    report = check_source(source)
    assert report.kind == "filter"
    assert report.toggle and report.file_handler
    assert report.hooks == {"inlet": "async", "stream": "sync"}
    assert report.icon.startswith("data:image/svg+xml")


def test_filter_with_wrongly_named_argument_gets_a_warning():
    report = check_source("class Filter:\n    def inlet(self, data):\n        return data\n")
    assert report.warnings == ["inlet() has no parameter named 'body'; it is passed by that name."]


def test_action_sub_actions_and_icon_from_frontmatter():
    source = src(
        '''
        """
        title: Multi
        icon_url: data:image/png;base64,iVBOR
        """
        class Action:
            actions = [
                {"id": "one", "name": "One"}, {"id": "two", "icon_url": "x"}, {"name": "no id"},
            ]
            async def action(self, body, __id__=None):
                return {"id": __id__}
        '''
    )
    report = check_source(source)
    assert report.kind == "action"
    assert report.hooks == {"action": "async"}
    assert report.sub_actions == [{"id": "one", "name": "One"}, {"id": "two", "icon_url": "x"}]
    assert report.icon == "data:image/png;base64,iVBOR"
    assert any("without a string id" in w for w in report.warnings)


def test_newer_open_webui_version_and_pipelines_hooks_are_warned():
    source = src(
        '''
        """
        required_open_webui_version: 9.0.0
        """
        class Pipe:
            async def on_startup(self): ...
            def pipe(self, body): return ""
        '''
    )
    warnings = check_source(source).warnings
    assert any("Open WebUI 9.0.0" in w for w in warnings)
    assert any("on_startup()" in w for w in warnings)


@pytest.mark.parametrize(
    ("source", "code", "error_type", "line", "fragment"),
    [
        pytest.param("x = 1\ndef f(:\n", "syntax_error", "SyntaxError", 2, "", id="syntax"),
        pytest.param(
            "import os\nimport definitely_not_installed_pkg\n",
            "import_error",
            "ModuleNotFoundError",
            2,
            "Declare the package that provides it in the frontmatter docstring",
            id="import",
        ),
        pytest.param(
            "from open_webui.routers.audio import transcribe\n",
            "import_error",
            "ModuleNotFoundError",
            1,
            "fnplatform does not provide the Open WebUI module",
            id="missing-open-webui-module",
        ),
        pytest.param(
            "class Helper:\n    pass\n",
            "no_plugin_class",
            "NoPluginClass",
            None,
            "No Pipe",
            id="no-class",
        ),
        pytest.param(
            "class Tools:\n    def search(self): ...\n",
            "no_plugin_class",
            "NoPluginClass",
            None,
            "looks like a Tools file",
            id="tools-file",
        ),
        pytest.param(
            "class Pipe:\n    pass\n", "missing_hook", "MissingHook", None, "pipe()", id="pipe-hook"
        ),
        pytest.param(
            "class Filter:\n    priority = 1\n",
            "missing_hook",
            "MissingHook",
            None,
            "inlet()",
            id="filter-hook",
        ),
        pytest.param(
            "class Action:\n    pass\n",
            "missing_hook",
            "MissingHook",
            None,
            "action()",
            id="action-hook",
        ),
        pytest.param(
            "class Pipe:\n    def __init__(self):\n"
            "        raise ValueError('missing configuration')\n"
            "    def pipe(self, body): ...\n",
            "init_error",
            "ValueError",
            3,
            "missing configuration",
            id="init-raises",
        ),
        pytest.param("raise SystemExit(3)\n", "exec_error", "SystemExit", 1, "3", id="system-exit"),
        pytest.param(
            '"""\nrequirements: definitely-not-installed-pkg>=1.0,<2, httpx\n"""\n',
            "requirements_missing",
            "RequirementsNotInstalled",
            None,
            "definitely-not-installed-pkg>=1.0,<2",
            id="requirements",
        ),
        pytest.param(
            '"""\nrequirements: httpx>=999\n"""\nclass Pipe:\n    def pipe(self, body): ...\n',
            "requirements_missing",
            "RequirementsNotInstalled",
            None,
            "httpx>=999",
            id="requirement-version-too-new",
        ),
    ],
)
def test_load_failures_say_what_and_where(source, code, error_type, line, fragment):
    detail = load_error(source)
    assert detail["code"] == code
    assert detail["type"] == error_type
    assert detail["line"] == line
    assert fragment in detail["message"]


def test_error_message_reads_type_line_and_message():
    with pytest.raises(SourceError) as info:
        load_source("a = 1\nb = (\n")
    assert info.value.messages == ["SyntaxError at line 2: '(' was never closed"]
    assert info.value.code == "invalid_source"


def test_installed_requirement_is_accepted():
    source = (
        '"""\nrequirements: pydantic>=2, httpx\n"""\nclass Pipe:\n    def pipe(self, body): ...\n'
    )
    assert check_source(source).requirements == ["pydantic>=2", "httpx"]


def test_failed_load_leaves_no_module_or_file(tmp_path):
    with pytest.raises(SourceError):
        load_source("import nope_nope\n", function_id="leaky", source_dir=tmp_path)
    assert "function_leaky" not in sys.modules
    assert list(tmp_path.iterdir()) == []


def test_legacy_and_open_webui_imports_resolve_without_rewriting_source():
    source = src(
        """
        from utils.misc import get_last_user_message
        import utils.misc
        from open_webui.utils.misc import pop_system_message
        from open_webui.apps.webui.utils.misc import get_last_user_message as legacy
        from open_webui.constants import TASKS

        class Pipe:
            def pipe(self, body):
                return (get_last_user_message(body["messages"]), legacy is get_last_user_message,
                        utils.misc.get_last_user_message is get_last_user_message)
        """
    )
    with load_source(source) as loaded:
        assert loaded.source == source
        messages = [{"role": "user", "content": "hello"}]
        assert loaded.instance.pipe({"messages": messages}) == ("hello", True, True)


def test_bare_legacy_names_are_only_aliased_inside_plugins():
    with pytest.raises(ModuleNotFoundError):
        __import__("utils.misc")


@pytest.mark.parametrize("entry", ["-", "[List", "./reqs.txt", "pkg>=>1"])
def test_an_entry_that_is_not_a_requirement_is_a_warning_not_a_refusal(entry):
    source = (
        f'"""\nrequirements: pydantic, {entry}\n"""\nclass Pipe:\n    def pipe(self, body): ...\n'
    )
    with load_source(source) as loaded:
        assert loaded.report.requirements == ["pydantic"]
        assert any("not a valid requirement" in w for w in loaded.report.warnings)


def test_a_toggle_filter_without_hooks_is_accepted_with_a_note():
    source = "class Filter:\n    def __init__(self):\n        self.toggle = True\n"
    with load_source(source) as loaded:
        assert loaded.report.kind == "filter" and loaded.report.toggle
        assert loaded.report.hooks == {}
        assert "no inlet, stream or outlet" in loaded.report.warnings[0]
