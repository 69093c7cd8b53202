"""Mirrors open_webui.routers.files: `upload_file_handler` and `upload_file`, as plugins call them.

A plugin hands over an upload (fastapi's `UploadFile(file=io.BytesIO(...),
filename=..., headers=...)`, or any file-like object or bytes) and gets back the
file's record, as upstream does: a `FileModel` with `id`, `filename` and `meta`
(`name`, `content_type`, `size`, `file_hash`, `data`: the metadata given). The
bytes go through `Storage` into the upload folder as `<id>_<name>`, the record
through `Files`, for the calling user (an admin's call may name another user);
plugins then link to it at `/api/v1/files/<id>/content`, which serves it to its
owner only.

The upload is read here, in the plugin's process (fastapi's UploadFile has an
async `read`, so its sync `.file` is read instead); only its bytes, name and
content type travel to the server. Awaited or not, as upstream changed from one
to the other. `process=True` cannot extract or index the file (fnplatform has no
retrieval pipeline): it is stored, and its record says why it was not processed.
"""

import hashlib
import inspect
import io
import json
import logging
import sys
import uuid
from pathlib import Path
from typing import Any

from functions.services.host import caller

from .._dual import call_dual
from .._host import hosted
from ..models._owned import acting_pk, user_id_of
from ..models.files import FileForm, FileModel, FileModelResponse, Files
from ..storage.provider import Storage

__all__ = [
    "FileForm",
    "FileModel",
    "FileModelResponse",
    "Files",
    "content_url",
    "upload_file",
    "upload_file_handler",
]

log = logging.getLogger(__name__)

NOT_PROCESSED = (
    "fnplatform has no retrieval pipeline: the file is stored but its content was not "
    "extracted or indexed"
)


def content_url(file_id: str) -> str:
    """Where a stored file is served (upstream's `get_file_content_by_id` route)."""
    return f"/api/v1/files/{file_id}/content"


def _metadata(metadata: dict | str | None) -> dict:
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except json.JSONDecodeError:
            raise ValueError("upload_file_handler: invalid metadata format") from None
    return dict(metadata or {})


def read_upload(file: Any) -> tuple[bytes, str, str | None]:
    """The bytes, file name and content type of an UploadFile, a file object or bytes."""
    if isinstance(file, bytes | bytearray):
        return bytes(file), "upload", None
    # starlette's UploadFile keeps the sync file object in `.file`; its own read is async.
    stream = getattr(file, "file", None) or file
    read = getattr(stream, "read", None)
    if read is None or inspect.iscoroutinefunction(read):
        raise TypeError(
            "upload_file_handler needs an UploadFile, a file object or bytes, "
            f"not {type(file).__name__}"
        )
    contents = read()
    if isinstance(contents, str):
        contents = contents.encode()
    name = getattr(file, "filename", None) or Path(str(getattr(stream, "name", "") or "")).name
    headers = getattr(file, "headers", None) or {}
    content_type = getattr(file, "content_type", None) or headers.get("content-type")
    return bytes(contents), str(name or "upload"), content_type


@hosted
def store_upload(
    contents: bytes,
    filename: str,
    content_type: str | None,
    metadata: dict,
    process: bool,
    user_id: str,
) -> FileModel | dict:
    """Store an upload for `user_id` (default: the caller; another user only in an
    admin's call)."""
    user_id = user_id or user_id_of(caller())
    pk = acting_pk(user_id)
    if pk is None:
        raise PermissionError(
            "upload_file_handler stores files for the calling user only "
            f"(user {user_id!r} is not the caller)"
        )
    file_id = str(uuid.uuid4())
    name = Path(filename).name or "upload"
    _, path = Storage.upload_file(io.BytesIO(contents), f"{file_id}_{name}", {})
    meta = {
        "name": name,
        "content_type": content_type if isinstance(content_type, str) else None,
        "size": len(contents),
        "file_hash": metadata.get("file_hash") or hashlib.sha256(contents).hexdigest(),
        "data": metadata,
    }
    data = {"status": "failed", "error": NOT_PROCESSED} if process else {}
    form = FileForm(id=file_id, filename=name, path=path, data=data, meta=meta)
    item = Files.insert_new_file(str(pk), form)
    if item is None:
        Storage.delete_file(path)
        raise RuntimeError(f"upload_file_handler could not record {name!r}")
    if process:
        log.warning("file %s stored unprocessed: %s", file_id, NOT_PROCESSED)
        return {"status": True, **item.model_dump()}
    return item


def _store(file, metadata, process, user) -> tuple:
    contents, filename, content_type = read_upload(file)
    if not contents:
        raise ValueError("upload_file_handler: the uploaded file is empty")
    # Nobody named: the server stores it for the caller (this process may not know them).
    user_id = user_id_of(user) if user is not None else ""
    return contents, filename, content_type, _metadata(metadata), bool(process), user_id


def upload_file_handler(
    request: Any = None,
    file: Any = None,
    metadata: dict | str | None = None,
    process: bool = True,
    process_in_background: bool = True,
    user: Any = None,
    background_tasks: Any = None,
    db: Any = None,
    **_: Any,
) -> Any:
    """Store `file` for `user` (default: the caller); return its FileModel.

    With `process=True` a dict (`status` and the record), as upstream."""
    return call_dual(sys._getframe(1), store_upload, *_store(file, metadata, process, user))


def upload_file(
    request: Any = None,
    background_tasks: Any = None,
    file: Any = None,
    metadata: dict | str | None = None,
    process: bool = True,
    process_in_background: bool = True,
    user: Any = None,
    db: Any = None,
    **_: Any,
) -> Any:
    """The upload endpoint's function, as plugins call it: the same as upload_file_handler."""
    return call_dual(sys._getframe(1), store_upload, *_store(file, metadata, process, user))
