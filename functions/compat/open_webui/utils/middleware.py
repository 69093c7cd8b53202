"""Mirrors the parts of open_webui.utils.middleware that agent pipes call themselves.

- `process_tool_result(request, name, result, tool_type, direct_tool=False,
  metadata=None, user=None)` turns what a tool returned into what upstream gives the
  model: `(text, files, embeds)`. An inline HTML response (fastapi's HTMLResponse,
  alone or with a context for the model) becomes an embed and a short status for the
  model; an external tool's `(result, headers)` pair is unpacked, inline HTML or a
  `Location` becoming an embed; a `data:image/...` string becomes an image file; MCP
  content lists become their texts (JSON parsed), their images and audio stored as
  files of the calling user (linked as `/api/v1/files/<id>/content`), their
  resources text or a note; other lists lose their `data:` items to files; dicts and
  lists become indented JSON and anything else a string. Awaited it is a coroutine
  (0.9.1 on); called plainly it answers the tuple, as before.
- `add_file_context(messages, chat_id, user)` puts an `<attached_files>` block of the
  files attached to the stored chat's user messages (by URL or chat reference) in
  front of the matching user messages, as upstream does for native function
  calling; a chat that is unsaved (`local:...`) or not the caller's leaves them as
  they are. Awaited or not.
- `chat_completion_files_handler(request, body, extra_params, user)` answers
  `(body, {"sources": [...]})`. fnplatform has no retrieval pipeline (no embeddings,
  no knowledge collections), so there is never anything to retrieve: the body comes
  back unchanged with no sources, as upstream answers when there are no files, and
  when the body does name files a `sources_retrieved` status with count 0 is emitted,
  as upstream emits when nothing was found.
- `get_system_oauth_token(request, user)` is None: fnplatform keeps no OAuth sessions.
"""

import base64
import binascii
import json
import logging
import mimetypes
import sys
from typing import Any

from .._dual import call_dual
from ..models._owned import user_id_of
from ..models.chats import Chats
from .misc import get_message_list

log = logging.getLogger(__name__)

EXTERNAL_TOOL_TYPES = ("external", "action", "terminal")


def _is_html_response(value: Any) -> bool:
    """fastapi's (starlette's) HTMLResponse, recognised without importing either (the
    server's environment has neither; plugins' has both)."""
    return any(cls.__name__ == "HTMLResponse" for cls in type(value).__mro__) and hasattr(
        value, "body"
    )


def _ui_status(name: str, status: str, message: str) -> dict:
    return {"status": status, "code": "ui_component", "message": f"{name}: {message}"}


def _embedded(name: str) -> dict:
    return _ui_status(name, "success", "Embedded UI result is active and visible to the user.")


def _usable_context(value: Any) -> bool:
    return value is not None and isinstance(value, str | dict | list)


def _from_html_response(name: str, response: Any, context: Any, embeds: list) -> Any:
    headers = getattr(response, "headers", {}) or {}
    body = response.body.decode("utf-8", "replace")
    if "inline" not in headers.get("Content-Disposition", headers.get("content-disposition", "")):
        return body
    embeds.append(body)
    code = int(getattr(response, "status_code", 200))
    if 200 <= code < 300:
        return context if _usable_context(context) else _embedded(name)
    if 400 <= code < 500:
        return _ui_status(name, "error", f"Client error {code} from embedded UI result.")
    if 500 <= code < 600:
        return _ui_status(name, "error", f"Server error {code} from embedded UI result.")
    return _ui_status(name, "error", f"Unexpected status code {code} from embedded UI result.")


def _header(headers: dict, name: str) -> str:
    return headers.get(name, headers.get(name.lower(), "")) or ""


def _from_external(name: str, result: Any, headers: Any, embeds: list) -> Any:
    try:
        headers = headers if isinstance(headers, dict) else dict(headers)
    except Exception as error:  # headers the tool gave in a shape we cannot read
        log.debug("process_tool_result: unreadable headers from %s: %s", name, error)
        headers = {}
    if not headers or "inline" not in _header(headers, "Content-Disposition"):
        return result
    pair = isinstance(result, tuple | list) and len(result) == 2
    if "text/html" in _header(headers, "Content-Type"):
        html, context = result if pair else (result, None)
        embeds.append(html)
        return context if _usable_context(context) else _embedded(name)
    location = _header(headers, "Location")
    if location:
        context = result[1] if pair else None
        embeds.append(location)
        return context if _usable_context(context) else _embedded(name)
    return result


def _file_url_from_base64(data_url: str, kind: str, metadata: dict, user: Any) -> str | None:
    """Store a data URL as a file of `user` (the caller by default); its content URL."""
    from ..routers.files import content_url, store_upload

    header, _, encoded = data_url.partition(",")
    content_type = header.removeprefix("data:").split(";")[0] or "application/octet-stream"
    try:
        contents = base64.b64decode(encoded, validate=False)
    except (binascii.Error, ValueError):
        log.warning("process_tool_result: undecodable %s data from an MCP tool", kind)
        return None
    extension = mimetypes.guess_extension(content_type) or ""
    user_id = user_id_of(user) if user is not None else ""
    item = store_upload(contents, f"tool-{kind}{extension}", content_type, {}, False, user_id)
    chat_id, message_id = metadata.get("chat_id"), metadata.get("message_id")
    if chat_id and message_id:
        Chats.insert_chat_files(chat_id, message_id, [item.id], item.user_id)
    return content_url(item.id)


def _json_or_text(text: Any) -> Any:
    if isinstance(text, str):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return text


def _from_mcp(result: list, files: list, metadata: dict, user: Any) -> Any:
    texts: list = []
    for item in result:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "text":
            texts.append(_json_or_text(item.get("text", "")))
        elif kind in ("image", "audio"):
            data = f"data:{item.get('mimeType')};base64,{item.get('data', item.get('blob', ''))}"
            url = _file_url_from_base64(data, kind, metadata, user)
            if url:
                files.append({"type": kind, "url": url})
        elif kind == "resource":
            resource = item.get("resource", {}) or {}
            text = resource.get("text", "")
            if isinstance(text, str) and text:
                texts.append(_json_or_text(text))
            elif resource.get("blob"):
                mime = resource.get("mimeType") or "application/octet-stream"
                if mime.startswith("image/"):
                    files.append({"type": "image", "url": f"data:{mime};base64,{resource['blob']}"})
                else:
                    uri = resource.get("uri", "resource")
                    texts.append(f"[Resource: {uri}] (binary data, mimeType: {mime})")
            elif resource.get("uri"):
                texts.append(resource["uri"])
    return texts[0] if len(texts) == 1 else texts


def _process_tool_result(
    request: Any,
    name: str,
    result: Any,
    tool_type: str,
    direct_tool: bool = False,
    metadata: dict | None = None,
    user: Any = None,
) -> tuple[str | None, list, list]:
    embeds: list = []
    files: list = []
    metadata = metadata or {}
    context = None
    if isinstance(result, tuple) and len(result) == 2 and _is_html_response(result[0]):
        result, context = result
    if _is_html_response(result):
        result = _from_html_response(name, result, context, embeds)
    elif (tool_type in EXTERNAL_TOOL_TYPES and isinstance(result, tuple)) or (
        direct_tool and isinstance(result, list) and len(result) == 2
    ):
        result = _from_external(name, result[0], result[1], embeds)

    if isinstance(result, str) and result.startswith("data:image/"):
        files.append({"type": "image", "url": result})
        result = f"{name}: Image file read successfully."

    if isinstance(result, list):
        if tool_type == "mcp":
            result = _from_mcp(result, files, metadata, user)
        else:
            kept = []
            for item in result:
                if isinstance(item, str) and item.startswith("data:"):
                    files.append({"type": "data", "content": item})
                else:
                    kept.append(item)
            result = kept
    if isinstance(result, list):
        result = {"results": result}
    if isinstance(result, dict):
        result = json.dumps(result, indent=2, ensure_ascii=False)
    if result is not None and not isinstance(result, str):
        if isinstance(result, tuple):
            result = json.dumps(result[0], indent=2, ensure_ascii=False) if result else ""
        else:
            result = str(result)
    return result, files, embeds


def process_tool_result(
    request: Any,
    tool_function_name: str,
    tool_result: Any,
    tool_type: str,
    direct_tool: bool = False,
    metadata: dict | None = None,
    user: Any = None,
) -> Any:
    """`(text, files, embeds)` for the model from a tool's return value; a coroutine
    when awaited (0.9.1 on), the tuple itself when called plainly (before)."""
    return call_dual(
        sys._getframe(1),
        _process_tool_result,
        request,
        tool_function_name,
        tool_result,
        tool_type,
        direct_tool,
        metadata,
        user,
    )


def is_saved_chat_id(chat_id: Any) -> bool:
    """Whether a chat id names a stored chat (not a temporary `local:` or a channel)."""
    if not isinstance(chat_id, str) or not chat_id:
        return False
    return not chat_id.startswith(("local:", "channel:"))


def _file_tag(file: dict) -> str:
    attrs = f'type="{file.get("type", "file")}" id="{file.get("id") or file.get("url")}"'
    for key in ("url", "content_type", "name"):
        if file.get(key):
            attrs += f' {key}="{file[key]}"'
    return f"<file {attrs}/>"


def _add_file_context(messages: list, chat_id: Any, user: Any) -> list:
    if not is_saved_chat_id(chat_id) or user is None:
        return messages
    chat = Chats.get_chat_by_id_and_user_id(chat_id, user_id_of(user))
    if not chat:
        return messages
    history = chat.chat.get("history", {}) or {}
    stored = get_message_list(history.get("messages", {}), history.get("currentId"))
    # Pair user messages only: the payload may hold tool-call messages the store does not.
    asked = [m for m in messages if m.get("role") == "user"]
    stored_asked = [m for m in stored if m.get("role") == "user"]
    for message, stored_message in zip(asked, stored_asked, strict=False):
        attached = [
            f
            for f in stored_message.get("files", []) or []
            if (f.get("url") and not str(f["url"]).startswith("data:"))
            or (f.get("type") == "chat" and f.get("id"))
        ]
        if not attached:
            continue
        tags = "\n".join(map(_file_tag, attached))
        block = f"<attached_files>\n{tags}\n</attached_files>\n\n"
        content = message.get("content", "")
        if isinstance(content, list):
            message["content"] = [{"type": "text", "text": block}, *content]
        else:
            message["content"] = block + (content or "")
    return messages


def add_file_context(messages: list, chat_id: str, user: Any) -> Any:
    """The messages with their stored attachments announced; awaited or not."""
    return call_dual(sys._getframe(1), _add_file_context, messages, chat_id, user)


async def chat_completion_files_handler(
    request: Any, body: dict, extra_params: dict | None = None, user: Any = None
) -> tuple[dict, dict[str, list]]:
    """`(body, {"sources": []})`: fnplatform has no retrieval pipeline, so no file yields
    a source (the body's files stay where they are for the model's own use)."""
    files = [
        f
        for f in ((body.get("metadata") or {}).get("files") or [])
        if isinstance(f, dict) and f.get("type") != "filesystem"
    ]
    if files:
        log.info("chat_completion_files_handler: no retrieval; %d file(s) unsearched", len(files))
        emitter = extra_params.get("__event_emitter__") if isinstance(extra_params, dict) else None
        if emitter is not None:
            await emitter(
                {
                    "type": "status",
                    "data": {"action": "sources_retrieved", "count": 0, "done": True},
                }
            )
    return body, {"sources": []}


async def get_system_oauth_token(request: Any, user: Any) -> None:
    """None: fnplatform keeps no OAuth sessions to take a token from."""
    return None
