"""Plugin signatures are read without evaluating annotations, at load and at call."""

import sys
from pathlib import Path

import pytest

from functions.services import runtime
from functions.services.context import CallContext
from functions.services.events import EventRecorder
from functions.services.loader import load_source
from functions.services.signatures import accepted_names, parameters
from tests.conftest import read_plugin
from tests.support.inline import source_call

ROOT = Path(__file__).resolve().parents[2]


def _function(source: str, name: str = "hook"):
    namespace: dict = {}
    exec(compile(source, "<plugin>", "exec"), namespace)
    return namespace[name]


def test_a_string_annotation_naming_an_undefined_name_is_not_evaluated():
    hook = _function(
        "def hook(body, __user__: 'UserModel' = None, **kwargs) -> 'StreamingResponse':\n"
        "    return body\n"
    )
    assert accepted_names(hook) == (frozenset({"body", "__user__", "kwargs"}), True)


def test_postponed_annotations_with_undefined_names_are_not_evaluated():
    hook = _function(
        "from __future__ import annotations\n"
        "def hook(body: ChatBody, __request__: Request | None = None) -> Iterator[Chunk]:\n"
        "    return body\n"
    )
    assert list(parameters(hook)) == ["body", "__request__"]


@pytest.mark.skipif(sys.version_info < (3, 14), reason="lazy annotations arrived in 3.14")
def test_lazy_annotations_with_undefined_names_are_not_evaluated():
    hook = _function("def hook(body: Undefined, __user__: AlsoUndefined = None):\n    return 1\n")
    assert list(parameters(hook)) == ["body", "__user__"]
    assert parameters(hook)["body"].annotation == "Undefined"


def test_a_callable_without_a_signature_has_no_parameters():
    assert parameters(object()) is None
    assert accepted_names(object()) == (frozenset(), False)


def test_plugin_code_signatures_are_read_only_through_the_helper():
    readers = [
        path.relative_to(ROOT).as_posix()
        for folder in ("functions", "valves", "chat")
        for path in (ROOT / folder).rglob("*.py")
        if "inspect.signature(" in path.read_text() and path.name != "signatures.py"
    ]
    assert readers == []


@pytest.mark.parametrize(
    ("name", "hooks"),
    [
        ("string_annotations_filter", {"inlet": "async", "outlet": "async"}),
        ("future_annotations_pipe", {"pipe": "async generator"}),
    ],
)
def test_files_with_unresolvable_annotations_load_cleanly(name, hooks, tmp_path):
    with load_source(read_plugin(name), function_id=name, source_dir=tmp_path) as loaded:
        assert loaded.report.hooks == hooks
        assert loaded.report.warnings == []


def _context(recorder: EventRecorder | None = None) -> CallContext:
    recorder = recorder or EventRecorder()
    return CallContext(
        user={"id": "7", "name": "bob", "role": "user"},
        event_emitter=recorder.emit,
        model={"id": "m1"},
    )


async def test_a_filter_with_string_annotations_gets_its_reserved_arguments():
    call = source_call("usage", read_plugin("string_annotations_filter"))
    body = await runtime.apply_inlet([call], {"messages": []}, _context())
    assert body["seen_by"] == "bob"
    done = {"messages": [{"role": "assistant", "content": "hi"}]}
    body = await runtime.apply_outlet([call], done, _context())
    assert body["messages"][-1]["content"] == "hi\n\n-- usage (m1, bob)"


async def test_a_pipe_with_postponed_annotations_gets_its_reserved_arguments():
    recorder = EventRecorder()
    call = source_call("relay", read_plugin("future_annotations_pipe"))
    chunks = [
        c
        async for batch in runtime.run_pipe(call, {"messages": []}, _context(recorder))
        for c in batch
    ]
    assert "".join(c.text for c in chunks) == "relayed for bob"
    assert recorder.events[0].data["description"] == "relaying"


BIFROST_SHAPED = """
from typing import Literal, List, Optional, Union
from pydantic import BaseModel, Field


class Filter:
    class Prefix(BaseModel):
        text: str = "p"

    class Valves(BaseModel):
        mode: Literal["keep", "drop"] = "keep"
        prefixes: List[Prefix] = Field(default_factory=list)
        note: Optional[str] = None

    def __init__(self):
        self.valves = self.Valves()

    def _wrap(self, response: StreamingResponse) -> StreamingResponse:  # imported later
        from starlette.responses import StreamingResponse
        return response

    def outlet(self, body: dict) -> Union[dict, StreamingResponse]:
        return {**body, "mode": self.valves.mode, "prefixes": len(self.valves.prefixes)}
"""


def test_an_annotation_naming_what_the_module_never_imports_does_not_stop_it_loading():
    # Python evaluates a def's annotations when the def runs; plugin code is compiled
    # with postponed annotations, so they stay strings (Valves still resolve them).
    with load_source(BIFROST_SHAPED, function_id="bifrost") as loaded:
        assert [f["kind"] for f in loaded.report.valves["fields"]] == ["select", "json", "str"]
        valves = loaded.valves_class(prefixes=[{"text": "a"}], mode="drop")
        assert valves.prefixes[0].text == "a"
        assert loaded.instance.outlet({}) == {"mode": "keep", "prefixes": 0}
