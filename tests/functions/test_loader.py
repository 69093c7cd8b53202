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


# Provable no-ops: the load report lists the filter hooks the server may skip.


def filter_of(methods: str, *, before: str = "", bases: str = "") -> str:
    """A Filter whose class body is `methods`, after module code `before`."""
    head = f"class Filter({bases}):\n" if bases else "class Filter:\n"
    return src(before) + head + textwrap.indent(src(methods), "    ")


WRAPPING = """
import functools

def logged(func):
    @functools.wraps(func)
    def wrapper(self, body):
        return func(self, body)
    return wrapper
"""
TAGGING = """
def tagged(func):
    func.tag = "x"
    return func
"""


@pytest.mark.parametrize(
    ("source", "noops"),
    [
        pytest.param(
            filter_of(
                """
                def outlet(self, body: dict, __user__: Optional[dict] = None) -> dict:
                    return body
                """,
                before="from typing import Optional\n",
            ),
            ["outlet"],
            id="return-body",
        ),
        pytest.param(
            filter_of(
                '''
                def stream(self, event: dict) -> dict:
                    """Pass through."""
                    return event
                '''
            ),
            ["stream"],
            id="stream-with-docstring",
        ),
        pytest.param(
            filter_of("async def inlet(self, body, __user__=None):\n    return body\n"),
            ["inlet"],
            id="async-return-body",
        ),
        pytest.param(
            filter_of(
                "def inlet(self, body):\n    pass\ndef outlet(self, body):\n    return None\n"
            ),
            ["inlet", "outlet"],
            id="inlet-outlet-return-none",
        ),
        pytest.param(
            filter_of('async def outlet(self, body):\n    """Nothing to do."""\n'),
            ["outlet"],
            id="async-docstring-only",
        ),
        pytest.param(
            filter_of("def inlet(self, data):\n    return data\n"),
            ["inlet"],
            id="other-name-called-positionally",
        ),
        pytest.param(
            filter_of("def stream(self, body):\n    return body\n"),
            ["stream"],
            id="stream-named-body-called-positionally",
        ),
        pytest.param(
            filter_of("def outlet(self, body, **kwargs):\n    return body\n"),
            ["outlet"],
            id="takes-kwargs",
        ),
        pytest.param(
            filter_of(
                "def outlet(self, body, __user__=dict(made='at def time')):\n    return body\n"
            ),
            ["outlet"],
            id="default-computed-at-def-time",
        ),
        pytest.param(
            filter_of(
                "pass\n",
                before="class Base:\n    def outlet(self, body):\n        return body\n",
                bases="Base",
            ),
            ["outlet"],
            id="inherited-from-the-plugins-base-class",
        ),
        pytest.param(
            filter_of(
                """
                def __init__(self):
                    self.toggle = True
                def inlet(self, body):
                    return body
                """
            ),
            ["inlet"],
            id="toggle",
        ),
        pytest.param(
            filter_of(
                """
                def inlet(self, body):
                    body["seen"] = True
                    return body
                def outlet(self, body):
                    return body
                """
            ),
            ["outlet"],
            id="only-the-no-op-hook",
        ),
        # Not provably no-ops: called as before.
        pytest.param(
            filter_of("def outlet(self, body):\n    body = body\n    return body\n"),
            [],
            id="reassigned-first",
        ),
        pytest.param(
            filter_of("def inlet(self, body):\n    return self.valves and body\n"),
            [],
            id="reads-self",
        ),
        pytest.param(filter_of("def inlet(self, body):\n    return dict(body)\n"), [], id="copy"),
        pytest.param(
            filter_of("def stream(self, event):\n    return event or None\n"),
            [],
            id="event-or-none",
        ),
        pytest.param(
            filter_of("def outlet(self, body):\n    print(body)\n    return body\n"), [], id="print"
        ),
        pytest.param(
            filter_of("@logged\ndef outlet(self, body):\n    return body\n", before=WRAPPING),
            [],
            id="decorated",
        ),
        pytest.param(
            filter_of("@tagged\ndef outlet(self, body):\n    return body\n", before=TAGGING),
            [],
            id="decorator-sets-an-attribute",
        ),
        pytest.param(
            filter_of(
                """
                def __init__(self):
                    self.outlet = lambda body: print(body) or body
                def outlet(self, body):
                    return body
                """
            ),
            [],
            id="replaced-in-init",
        ),
        pytest.param(filter_of("def stream(self, event):\n    pass\n"), [], id="stream-pass"),
        pytest.param(
            filter_of("async def stream(self, event):\n    return None\n"), [], id="stream-none"
        ),
        pytest.param(filter_of("def outlet(self, body):\n    yield body\n"), [], id="generator"),
        pytest.param(
            filter_of("async def outlet(self, body):\n    yield body\n"), [], id="async-generator"
        ),
        pytest.param(
            filter_of(
                "async def outlet(self, body):\n    await asyncio.sleep(0)\n    return body\n",
                before="import asyncio\n",
            ),
            [],
            id="awaits",
        ),
        pytest.param(
            filter_of("def inlet(self, body, __user__=None):\n    return __user__\n"),
            [],
            id="returns-another-argument",
        ),
        pytest.param(
            filter_of("def inlet(self, data, body=None):\n    return data\n"),
            [],
            id="data-not-where-it-is-passed",
        ),
        pytest.param(
            filter_of("def outlet(self, body, /):\n    return body\n"),
            [],
            id="positional-only-body-passed-by-name",
        ),
        pytest.param(
            filter_of("def outlet(self, body, extra):\n    return body\n"),
            [],
            id="call-would-not-bind",
        ),
        pytest.param(filter_of("def outlet(self, *args):\n    return args\n"), [], id="star-args"),
        pytest.param(filter_of("outlet = lambda self, body: body\n"), [], id="lambda-attribute"),
        pytest.param(
            filter_of("outlet = functools.partial(dict)\n", before="import functools\n"),
            [],
            id="partial-attribute",
        ),
        pytest.param(filter_of("outlet = len\n"), [], id="builtin-attribute"),
        pytest.param(
            filter_of(
                """
                def inlet(self, body):
                    return body
                outlet = inlet
                """
            ),
            ["inlet"],
            id="method-assigned-under-another-name",
        ),
        pytest.param(
            filter_of(
                """
                def __getattr__(self, name):
                    return None
                def outlet(self, body):
                    return body
                """
            ),
            [],
            id="class-defines-getattr",
        ),
        pytest.param(
            filter_of(
                """
                def __setattr__(self, name, value):
                    object.__setattr__(self, name, value)
                def outlet(self, body):
                    return body
                """
            ),
            [],
            id="class-defines-setattr",
        ),
        pytest.param(
            filter_of(
                "def outlet(self, body):\n    return body\n",
                before="import abc\n",
                bases="metaclass=abc.ABCMeta",
            ),
            [],
            id="metaclass",
        ),
    ],
)
def test_provable_no_op_hooks_are_listed(source, noops):
    report = check_source(source)
    assert report.noop_hooks == noops
    assert set(noops) <= set(report.hooks)  # still hooks: listings show them


def test_pipes_and_actions_have_no_no_op_hooks():
    report = check_source("class Action:\n    def action(self, body):\n        return body\n")
    assert report.hooks == {"action": "sync"}
    assert report.noop_hooks == []


def test_a_report_stored_before_no_op_hooks_reads_as_none_skipped():
    from functions.services.loader import LoadReport, validate_report

    stored = check_source(filter_of("def outlet(self, body):\n    return body\n")).as_dict()
    assert stored["noop_hooks"] == ["outlet"]
    del stored["noop_hooks"]
    assert LoadReport.from_dict(stored).noop_hooks == []
    assert validate_report(stored)["noop_hooks"] == []


@pytest.mark.parametrize(
    ("ops", "coroutine", "expected"),
    [
        # CPython 3.14: LOAD_FAST_BORROW, and no RETURN_CONST.
        ([("RESUME", 0), ("LOAD_FAST_BORROW", "body"), ("RETURN_VALUE", None)], False, "body"),
        ([("RESUME", 0), ("LOAD_CONST", None), ("RETURN_VALUE", None)], False, None),
        ([("RESUME", 0), ("LOAD_CONST", 0), ("RETURN_VALUE", None)], False, "no"),
        ([("RESUME", 0), ("RETURN_CONST", False)], False, "no"),
        # An async def's prologue and its StopIteration guard, after the return.
        (
            [
                ("RETURN_GENERATOR", None),
                ("POP_TOP", None),
                ("RESUME", 0),
                ("LOAD_FAST", "event"),
                ("RETURN_VALUE", None),
                ("CALL_INTRINSIC_1", 3),
                ("RERAISE", 1),
            ],
            True,
            "event",
        ),
        ([("RESUME", 0), ("LOAD_FAST", "event"), ("RETURN_VALUE", None)], True, "no"),
        ([("RESUME", 0), ("LOAD_FAST_LOAD_FAST", ("a", "b")), ("RETURN_VALUE", None)], False, "no"),
        ([("RESUME", 0), ("LOAD_FAST", "body")], False, "no"),
    ],
)
def test_the_bytecode_reading_knows_every_supported_cpython(ops, coroutine, expected):
    from functions.services.noops import trivial_return

    found = trivial_return(ops, coroutine=coroutine)
    if expected == "no":
        assert found is None
    elif expected is None:
        assert found == ("const", None)
    else:
        assert found == ("local", expected)
