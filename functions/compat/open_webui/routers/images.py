"""Mirrors open_webui.routers.images: image data helpers and `upload_image`, as plugins call them.

- `load_b64_image_data(b64)` and `get_image_data(data, headers=None)` decode a
  data URL or bare base64 (default type image/png) into `(bytes, content type)`;
  `get_image_data` also fetches an http(s) URL that answers with an image. Both
  answer `(None, None)` (`load_b64_image_data`: None) when the data is unusable,
  as upstream. `get_image_data` works awaited (0.6.3x on) or not (before).
- `upload_image` stores the image through `upload_file_handler` for the calling
  user, links it to the chat message when the metadata names `chat_id` and
  `message_id`, and gives the URL plugins embed (`/api/v1/files/<id>/content`).
  Awaited it answers `(file_item, url)` and takes `(request, image_data,
  content_type, metadata, user)`, as upstream today; called plainly it answers the
  URL alone, as the older sync one did, whose order was `(request, metadata,
  image_data, content_type, user)`: keyword calls work with either.
- `image_generations` raises: fnplatform has no image generation engine.
"""

import base64
import binascii
import logging
import mimetypes
import sys
from typing import Any

import httpx
from asgiref.sync import sync_to_async
from pydantic import BaseModel

from .._dual import call_dual, called_with_await, run_blocking
from ..models._owned import user_id_of
from ..models.chats import Chats
from ..models.files import FileModel
from .files import content_url, store_upload

log = logging.getLogger(__name__)

FETCH_TIMEOUT = 30


class CreateImageForm(BaseModel):
    model: str | None = None
    prompt: str
    size: str | None = None
    n: int = 1
    steps: int | None = None
    negative_prompt: str | None = None


GenerateImageForm = CreateImageForm  # upstream keeps both names


def _decode(data: str) -> tuple[bytes, str]:
    if "," in data:
        header, encoded = data.split(",", 1)
        mime_type = header.split(";")[0].removeprefix("data:") or "image/png"
    else:
        mime_type, encoded = "image/png", data
    return base64.b64decode(encoded, validate=False), mime_type


def load_b64_image_data(b64_str: str) -> tuple[bytes, str] | None:
    """Decode a data URL or bare base64 string; None when it is not base64."""
    try:
        return _decode(str(b64_str))
    except (binascii.Error, ValueError) as exc:
        log.warning("load_b64_image_data: unusable image data: %s", exc)
        return None


def _fetch(url: str, headers: dict | None) -> tuple[bytes | None, str | None]:
    response = httpx.get(url, headers=headers, timeout=FETCH_TIMEOUT, follow_redirects=True)
    response.raise_for_status()
    content_type = response.headers.get("content-type", "")
    if content_type.split("/")[0] != "image":
        log.warning("get_image_data: %s is not an image (%s)", url, content_type or "no type")
        return None, None
    return response.content, content_type


def _image_data(data: str, headers: dict | None = None) -> tuple[bytes | None, str | None]:
    try:
        if str(data).startswith(("http://", "https://")):
            return _fetch(str(data), headers)
        return _decode(str(data))
    except (binascii.Error, ValueError, httpx.HTTPError) as exc:
        log.warning("get_image_data: could not load the image: %s", exc)
        return None, None


def get_image_data(data: str, headers: dict | None = None, **_: Any) -> Any:
    """`(bytes, content type)` of a data URL, base64 or image URL; `(None, None)` if unusable."""
    return call_dual(sys._getframe(1), _image_data, data, headers)


def _upload(image_data, content_type, metadata: dict, user) -> tuple[FileModel, str]:
    if image_data is None or content_type is None:
        raise ValueError("upload_image: no image data (or no content type) to store")
    extension = mimetypes.guess_extension(content_type) or ""
    user_id = user_id_of(user) if user is not None else ""
    item = store_upload(
        bytes(image_data), f"generated-image{extension}", content_type, metadata, False, user_id
    )
    chat_id, message_id = metadata.get("chat_id"), metadata.get("message_id")
    if chat_id and message_id:
        Chats.insert_chat_files(chat_id, message_id, [item.id], item.user_id)
    return item, content_url(item.id)


def upload_image(
    request: Any = None,
    image_data: Any = None,
    content_type: Any = None,
    metadata: Any = None,
    user: Any = None,
    db: Any = None,
    **_: Any,
) -> Any:
    """Store an image for `user` (default: the caller); `(file_item, url)` awaited, else the URL."""
    if isinstance(image_data, dict) and not isinstance(metadata, dict):
        # The older positional order: (request, metadata, image_data, content_type, user).
        metadata, image_data, content_type = image_data, content_type, metadata
    args = (image_data, content_type, dict(metadata or {}), user)
    if called_with_await(sys._getframe(1)):
        return sync_to_async(_upload, thread_sensitive=False)(*args)
    return run_blocking(_upload, *args)[1]


async def image_generations(request: Any = None, form_data: Any = None, *_: Any, **__: Any):
    """Refused: there is no image generation engine to run."""
    raise RuntimeError(
        "open_webui.routers.images.image_generations is not available: fnplatform has no "
        "image generation engine (generate images with your own API calls, then store "
        "them with upload_image)"
    )
