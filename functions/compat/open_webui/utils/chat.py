"""Mirrors open_webui.utils.chat: `generate_chat_completion` through fnplatform's runtime.

It answers like upstream: a dict for a plain request, a streaming object (with an
async `body_iterator` of SSE bytes) when `stream` is set. Filters apply unless
`bypass_filter` is true. Nested calls are capped so a pipe that calls itself
fails clearly instead of recursing forever.
"""

import contextvars
import json
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied

from functions.services.host import caller, calling_origin, may_read_user

from .._host import hosted

MAX_DEPTH = 4
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("completion_depth", default=0)


class CompletionStream:
    """Shaped like starlette's StreamingResponse, which plugins pass through or read."""

    media_type = "text/event-stream"

    def __init__(self, body_iterator: AsyncIterator[bytes]) -> None:
        self.body_iterator = body_iterator
        self.status_code = 200
        self.headers = {"content-type": self.media_type}


def _user_id(user: Any) -> str:
    if user is None:
        me = caller()
        return str(me["id"]) if me else ""
    if isinstance(user, dict):
        return str(user.get("id", ""))
    return str(getattr(user, "id", ""))


def _django_user(user: Any):
    user_id = _user_id(user)
    if not may_read_user(user_id) or not user_id.isdigit():
        raise PermissionDenied("A plugin may only generate completions for its own caller.")
    return get_user_model().objects.get(pk=int(user_id), is_active=True)


async def _sse(run) -> AsyncIterator[bytes]:
    async for batch in run.stream():
        yield "".join(f"data: {json.dumps(data)}\n\n" for data in batch).encode()
    yield b"data: [DONE]\n\n"


@hosted
async def generate_chat_completion(
    request: Any, form_data: dict, user: Any = None, bypass_filter: bool = False, **_: Any
) -> dict | CompletionStream:
    """Run a completion for the calling user; return a dict, or a stream when asked.
    `request` is accepted as upstream's signature has it; the server's own copy of
    the call's request is what counts."""
    from chat.services.run import completion_run

    depth = _depth.get()
    if depth >= MAX_DEPTH:
        raise RuntimeError(f"generate_chat_completion nested more than {MAX_DEPTH} deep")
    _depth.set(depth + 1)
    django_user = await sync_to_async(_django_user)(user)
    # The nested call's plugins see the request the outer call answers (the server's
    # copy of it: `request` itself came from plugin code).
    run = await completion_run(
        user=django_user,
        body=dict(form_data),
        origin=calling_origin(),
        bypass_filter=bypass_filter,
    )
    if form_data.get("stream"):
        return CompletionStream(_sse(run))
    return await run.answer()


generate_chat_completions = generate_chat_completion
