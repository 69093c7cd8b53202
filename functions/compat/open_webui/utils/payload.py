"""Mirrors open_webui.utils.payload: pure converters between request bodies.

They behave as upstream's do (0.6 and later): the `apply_*` functions change
`form_data` in place and return it; the `convert_*` functions build a new Ollama
body from an OpenAI one. fnplatform itself only speaks OpenAI's format upstream;
these exist for plugins that talk to an Ollama server themselves.
"""

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .misc import add_or_update_system_message, deep_update

# Per-model settings that only mean something to Open WebUI itself.
_OPEN_WEBUI_PARAMS = ("stream_response", "stream_delta_chunk_size", "function_calling", "system")


def _unescape_stops(stops: Any) -> list[str]:
    # Stop words are stored with escapes typed by hand ("\\n"); the API wants the real ones.
    return [bytes(str(s), "utf-8").decode("unicode_escape") for s in stops]


def _json_or_value(value: Any) -> Any:
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


OPENAI_PARAM_TYPES: dict[str, Callable[[Any], Any]] = {
    "temperature": float,
    "top_p": float,
    "min_p": float,
    "max_tokens": int,
    "frequency_penalty": float,
    "presence_penalty": float,
    "reasoning_effort": str,
    "seed": lambda value: value,
    "stop": _unescape_stops,
    "logit_bias": lambda value: value,
    "response_format": dict,
}

OLLAMA_OPTION_TYPES: dict[str, Callable[[Any], Any]] = {
    **{name: float for name in ("temperature", "top_p", "mirostat_eta", "mirostat_tau")},
    **{name: float for name in ("min_p", "typical_p", "repeat_penalty")},
    **{name: float for name in ("presence_penalty", "frequency_penalty")},
    **{name: int for name in ("mirostat", "num_ctx", "num_batch", "num_keep", "num_predict")},
    **{name: int for name in ("repeat_last_n", "top_k", "num_gpu", "main_gpu", "num_thread")},
    **{name: bool for name in ("penalize_newline", "numa", "low_vram", "vocab_only")},
    **{name: bool for name in ("use_mmap", "use_mlock")},
    "seed": lambda value: value,
    "stop": _unescape_stops,
}

# Ollama takes these at the top of the body, not among its options.
OLLAMA_ROOT_PARAMS: dict[str, Callable[[Any], Any]] = {
    "format": _json_or_value,
    "keep_alive": _json_or_value,
    "think": bool,
}


def prompt_template(template: str, user: Any = None) -> str:
    """Fill Open WebUI's prompt variables ({{USER_NAME}}, {{CURRENT_DATE}}, ...)."""
    now = datetime.now()
    info = _get(user, "info") or {}
    values = {
        "{{USER_NAME}}": _get(user, "name") or "Unknown",
        "{{USER_LOCATION}}": (info.get("location") if isinstance(info, dict) else None)
        or "Unknown",
        "{{CURRENT_DATETIME}}": now.strftime("%Y-%m-%d %H:%M:%S"),
        "{{CURRENT_DATE}}": now.strftime("%Y-%m-%d"),
        "{{CURRENT_TIME}}": now.strftime("%I:%M:%S %p"),
        "{{CURRENT_WEEKDAY}}": now.strftime("%A"),
        "{{CURRENT_TIMEZONE}}": now.astimezone().tzname() or "",
    }
    for variable, value in values.items():
        template = template.replace(variable, str(value))
    return template


def _get(user: Any, name: str) -> Any:
    if user is None:
        return None
    return user.get(name) if isinstance(user, dict) else getattr(user, name, None)


def apply_system_prompt_to_body(
    system: str | None, form_data: dict, metadata: dict | None = None, user: Any = None
) -> dict:
    """Put `system` (its variables filled) first in the messages as the system message."""
    if not system:
        return form_data
    for name, value in ((metadata or {}).get("variables") or {}).items():
        system = system.replace(name, str(value))
    form_data["messages"] = add_or_update_system_message(
        prompt_template(system, user), form_data.get("messages", [])
    )
    return form_data


def apply_model_system_prompt_to_body(params: dict, form_data: dict, user: Any = None) -> dict:
    """The older name: the system prompt comes from the model's `params["system"]`."""
    return apply_system_prompt_to_body((params or {}).get("system"), form_data, None, user)


def apply_model_params_to_body(
    params: dict, form_data: dict, mappings: dict[str, Callable[[Any], Any]]
) -> dict:
    """Copy every set parameter into `form_data`, cast by `mappings` where it names one."""
    for key, value in (params or {}).items():
        if value is None:
            continue
        cast = mappings.get(key)
        if key not in mappings:
            form_data[key] = value
        elif callable(cast):
            form_data[key] = cast(value)
    return form_data


def remove_open_webui_params(params: dict) -> dict:
    """Drop the settings only Open WebUI reads (in place)."""
    for key in _OPEN_WEBUI_PARAMS:
        params.pop(key, None)
    return params


def _with_custom_params(params: dict) -> dict:
    params = remove_open_webui_params(params)
    custom = params.pop("custom_params", None) or {}
    if not custom:
        return params
    parsed = {k: _json_or_value(v) if isinstance(v, str) else v for k, v in custom.items()}
    return deep_update(params, parsed)


def apply_model_params_to_body_openai(params: dict, form_data: dict) -> dict:
    """A model's parameters into an OpenAI body (custom params merged in first)."""
    if not params:
        return form_data
    return apply_model_params_to_body(_with_custom_params(params), form_data, OPENAI_PARAM_TYPES)


def apply_model_params_to_body_ollama(params: dict, form_data: dict) -> dict:
    """A model's parameters into an Ollama body: most under `options`, some at its top."""
    params = _with_custom_params(dict(params or {}))
    if params.get("max_tokens") is not None:
        params["num_predict"] = params.pop("max_tokens")
    for key, cast in OLLAMA_ROOT_PARAMS.items():
        if params.get(key) is not None:
            form_data[key] = cast(params.pop(key))
    options = form_data.get("options") or {}
    form_data["options"] = apply_model_params_to_body(params, options, OLLAMA_OPTION_TYPES)
    return form_data


def _ollama_tool_call(call: dict) -> dict:
    function = call.get("function") or {}
    arguments = function.get("arguments") or {}
    return {
        "index": call.get("index", 0),
        "id": call.get("id"),
        "function": {
            "name": function.get("name", ""),
            "arguments": json.loads(arguments) if isinstance(arguments, str) else arguments,
        },
    }


def _ollama_message(message: dict) -> dict:
    converted: dict[str, Any] = {"role": message["role"]}
    content = message.get("content", [])
    tool_calls = message.get("tool_calls")
    if tool_calls:
        converted["tool_calls"] = [_ollama_tool_call(call) for call in tool_calls]
        converted["content"] = ""  # Ollama wants an empty string beside tool calls
        return converted
    if isinstance(content, str):
        converted["content"] = content
        if message.get("tool_call_id"):
            converted["tool_call_id"] = message["tool_call_id"]
        return converted
    text, images = "", []
    for part in content or []:
        if part.get("type") == "text":
            text += part.get("text", "")
        elif part.get("type") == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            if url:
                images.append(url.split(",")[-1] if url.startswith("data:") else url)
    if text:
        converted["content"] = text.strip()
    if images:
        converted["images"] = images
    return converted


def convert_messages_openai_to_ollama(messages: list[dict]) -> list[dict]:
    """OpenAI chat messages as Ollama's: text joined, images as bare base64, tool calls
    with parsed arguments."""
    return [_ollama_message(message) for message in messages or []]


def _root_and_options(payload: dict, options: dict) -> None:
    for key, cast in OLLAMA_ROOT_PARAMS.items():
        if options.get(key) is not None:
            payload[key] = cast(options.pop(key))
    if "max_tokens" in options:
        options["num_predict"] = options.pop("max_tokens")
    if "system" in options:
        payload["system"] = options.pop("system")
    payload["options"] = options


def convert_payload_openai_to_ollama(openai_payload: dict) -> dict:
    """An OpenAI chat completion body as an Ollama /api/chat body."""
    payload: dict[str, Any] = {
        "model": openai_payload.get("model"),
        "messages": convert_messages_openai_to_ollama(openai_payload.get("messages")),
        "stream": openai_payload.get("stream", False),
    }
    if "tools" in openai_payload:
        payload["tools"] = openai_payload["tools"]
    if openai_payload.get("options"):
        _root_and_options(payload, openai_payload["options"])
    if "stop" in openai_payload:
        payload["options"] = {**payload.get("options", {}), "stop": openai_payload["stop"]}
    if "metadata" in openai_payload:
        payload["metadata"] = openai_payload["metadata"]
    response_format = openai_payload.get("response_format")
    if response_format:
        schema = response_format.get(response_format.get("type")) or None
        if schema:
            payload["format"] = schema.get("schema")
    return payload


def convert_embedding_payload_openai_to_ollama(openai_payload: dict) -> dict:
    """An OpenAI embeddings body as Ollama's (`input` a list, `prompt` one string)."""
    value = openai_payload.get("input")
    inputs = value if isinstance(value, list) else [value]
    payload: dict[str, Any] = {
        "model": openai_payload.get("model"),
        "input": inputs,
        "prompt": "\n".join(str(x) for x in inputs) if isinstance(value, list) else str(value),
    }
    for key in ("options", "truncate", "keep_alive"):
        if key in openai_payload:
            payload[key] = openai_payload[key]
    return payload
