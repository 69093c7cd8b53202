"""Mirrors open_webui.utils.tools: OpenAI tool specs from Python methods, and the
`__tools__`-style dict agentic pipes build with `get_tools`.

Specs are built as upstream builds them (spec §9.1): every public method of a
toolkit object is a tool; its signature's type hints (Any where missing) and
defaults become a pydantic model, whose JSON schema is cleaned the way upstream
cleans langchain's output (`anyOf` with null collapsed, `default: null` dropped, a
missing type made "string", titles dropped). Helpers start with `_` and are no
tools. The tool's description is the docstring before the first `:param` or
`:return`, `:param x:` lines describe parameters, and reserved `__x__` parameters
are left out. The 0.3-era names
(`get_tools_specs`, `function_to_pydantic_model`, `get_callable_attributes`,
`apply_extra_params_to_tool_function`) are the same functions.

fnplatform has no toolkits or tool servers yet (they arrive with their own issue):
`get_tools` skips ids it does not know, as upstream skips unknown ids, so it
answers {}. It has no built-in tools (web search, knowledge, image generation, ...
as upstream's native function calling offers them) and no terminal servers either,
so `get_builtin_tools` answers what upstream answers when none is enabled ({},
awaited as since 0.9.1 or called plainly as before) and `get_terminal_tools` what
upstream answers for a terminal id it has no connection for ({}, not the
`(tools, system prompt)` pair of a configured terminal).
"""

import inspect
import logging
import re
import sys
import typing
from collections.abc import Awaitable, Callable
from functools import partial, update_wrapper
from typing import Any

from pydantic import BaseModel, Field, create_model

from functions.services.signatures import parameters

from .._dual import call_dual
from ..models.tools import Tools

log = logging.getLogger(__name__)

_PARAM = re.compile(r":param (\w+):\s*(.+)")
_SECTION = re.compile(r":(param|return)")


def parse_description(docstring: str | None) -> str:
    """The docstring's text before its first `:param` or `:return` line."""
    lines = [line.strip() for line in (docstring or "").strip().splitlines()]
    kept: list[str] = []
    for line in lines:
        if line.startswith((":param", ":return")):
            break
        kept.append(line)
    return "\n".join(kept)


def parse_docstring(docstring: str | None) -> dict[str, str]:
    """{parameter: description} from reST `:param name: text` lines (reserved names left out)."""
    found: dict[str, str] = {}
    for line in (docstring or "").splitlines():
        match = _PARAM.match(line.strip())
        if match and not match.group(1).startswith("__"):
            found[match.group(1)] = match.group(2)
    return found


def _type_hints(func: Callable) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func)
    except Exception:  # a hint that names something undefined: that parameter is Any
        return {}


def convert_function_to_pydantic_model(func: Callable) -> type[BaseModel]:
    """A pydantic model of a function's parameters, named after it, described by its
    docstring."""
    hints = _type_hints(func)
    descriptions = parse_docstring(func.__doc__)
    fields: dict[str, Any] = {}
    for name, parameter in (parameters(func) or {}).items():
        if name.startswith("__") or parameter.kind in (
            parameter.VAR_POSITIONAL,
            parameter.VAR_KEYWORD,
        ):
            continue
        default = ... if parameter.default is parameter.empty else parameter.default
        hint = hints.get(name, Any)
        if name in descriptions:
            fields[name] = (hint, Field(default, description=descriptions[name]))
        else:
            fields[name] = (hint, default)
    model = create_model(func.__name__, **fields)
    model.__doc__ = parse_description(func.__doc__)
    return model


def get_functions_from_tool(tool: object) -> list[Callable]:
    """The tool methods of a toolkit: public callables (no leading `_`) that are not
    classes."""
    return [
        getattr(tool, name)
        for name in dir(tool)
        if not name.startswith("_")
        and callable(getattr(tool, name))
        and not inspect.isclass(getattr(tool, name))
    ]


def clean_openai_tool_schema(schema: dict) -> dict:
    """Make a JSON schema the shape OpenAI-style tool calling expects."""
    schema = dict(schema)
    any_of = schema.pop("anyOf", None)
    if any_of is not None:
        others = [option for option in any_of if option.get("type") != "null"]
        if len(others) == 1:
            schema = {**others[0], **schema}
        else:
            schema["anyOf"] = [clean_openai_tool_schema(option) for option in others]
    if "default" in schema and schema["default"] is None:
        del schema["default"]
    schema.pop("title", None)
    if "type" not in schema and "anyOf" not in schema and "$ref" not in schema:
        schema["type"] = "string"
    if isinstance(schema.get("properties"), dict):
        schema["properties"] = {
            key: clean_openai_tool_schema(value) for key, value in schema["properties"].items()
        }
    if isinstance(schema.get("items"), dict):
        schema["items"] = clean_openai_tool_schema(schema["items"])
    return schema


def convert_pydantic_model_to_openai_function_spec(model: type[BaseModel]) -> dict:
    """{"name", "description", "parameters"} for a model made from a function."""
    schema = model.model_json_schema()
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            key: clean_openai_tool_schema(value)
            for key, value in (schema.get("properties") or {}).items()
        },
    }
    if schema.get("required"):
        parameters["required"] = list(schema["required"])
    if schema.get("$defs"):
        parameters["$defs"] = schema["$defs"]
    return {"name": model.__name__, "description": model.__doc__ or "", "parameters": parameters}


def get_tool_specs(tool_module: object) -> list[dict]:
    """The OpenAI function specs of every tool method of a toolkit object."""
    return [
        convert_pydantic_model_to_openai_function_spec(convert_function_to_pydantic_model(f))
        for f in get_functions_from_tool(tool_module)
    ]


def get_async_tool_function_and_apply_extra_params(
    function: Callable, extra_params: dict
) -> Callable[..., Awaitable]:
    """A coroutine function calling `function` with the extra (reserved) arguments it
    accepts bound; a sync function is run inline, as upstream does."""
    accepted = parameters(function) or {}
    bound = partial(function, **{k: v for k, v in extra_params.items() if k in accepted})
    if inspect.iscoroutinefunction(function):
        update_wrapper(bound, function)
        return bound

    async def call(*args, **kwargs):
        return bound(*args, **kwargs)

    update_wrapper(call, function)
    return call


def get_tools(request: Any, tool_ids: list[str], user: Any, extra_params: dict) -> dict:
    """The `__tools__` dict for these tool ids: {name: {"tool_id", "callable", "spec",
    "metadata"}}. fnplatform has no toolkits or tool servers yet, so each id is skipped
    (as upstream skips ids it cannot find) and the answer is {}."""
    for tool_id in tool_ids or []:
        if Tools.get_tool_by_id(tool_id) is None:
            log.warning("get_tools: no tool %r here (fnplatform has no tools yet)", tool_id)
    return {}


def _no_builtin_tools(features: dict | None = None, model: dict | None = None) -> dict:
    log.debug("get_builtin_tools: fnplatform has no built-in tools to enable")
    return {}


def get_builtin_tools(
    request: Any = None,
    extra_params: dict | None = None,
    features: dict | None = None,
    model: dict | None = None,
    **_: Any,
) -> Any:
    """The built-in tools enabled for these features and this model: {} (there are none
    here), a coroutine when awaited (0.9.1 on) and the dict itself when called plainly."""
    return call_dual(sys._getframe(1), _no_builtin_tools, features, model)


async def get_terminal_tools(
    request: Any = None,
    terminal_id: str | None = None,
    user: Any = None,
    extra_params: dict | None = None,
    **_: Any,
) -> dict:
    """The tools of the terminal server `terminal_id`. fnplatform has no terminal server
    connections, so, as upstream does for a terminal it cannot find, it answers {}."""
    log.warning("get_terminal_tools: no terminal server %r (fnplatform has none)", terminal_id)
    return {}


# The names of Open WebUI 0.3 to 0.5, and of later versions, for the same functions.
get_tools_specs = get_tool_specs
function_to_pydantic_model = convert_function_to_pydantic_model
get_callable_attributes = get_functions_from_tool
apply_extra_params_to_tool_function = get_async_tool_function_and_apply_extra_params
get_updated_tool_function = get_async_tool_function_and_apply_extra_params
