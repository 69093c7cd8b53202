"""A stored file's bytes as an HTTP response, for the doors that serve files: Open
WebUI's `/api/v1/files/{id}/content` (chat.files_api) and the chat pages' download
links (chat.views.download_file). Who may read the file is the door's to check."""

import importlib
import mimetypes
from pathlib import Path
from urllib.parse import quote

from django.http import FileResponse, Http404

from chat.models import File


def stored_path(path: str) -> Path:
    """The file's content on disk; Http404 when it is not stored here (or is gone)."""
    # The plugin-facing module: the upload folder plugins wrote into.
    storage = importlib.import_module("open_webui.storage.provider")
    try:
        target = storage.resolve(path)
    except ValueError:
        raise Http404("The file's content is not stored here.") from None
    if not target.is_file():
        raise Http404("The file's content is gone.")
    return target


def file_name(row: File) -> str:
    meta = row.meta if isinstance(row.meta, dict) else {}
    return str(meta.get("name") or row.filename)


def file_response(row: File, *, attachment: bool) -> FileResponse:
    """The file's content, downloaded (`attachment`) or shown, never run as a page of
    our origin."""
    meta = row.meta if isinstance(row.meta, dict) else {}
    name = file_name(row)
    content_type = meta.get("content_type") or mimetypes.guess_type(name)[0]
    response = FileResponse(
        stored_path(row.path).open("rb"), content_type=content_type or "application/octet-stream"
    )
    disposition = "attachment" if attachment else "inline"
    response["Content-Disposition"] = f"{disposition}; filename*=UTF-8''{quote(name)}"
    response["X-Content-Type-Options"] = "nosniff"
    # Plugins choose what they store: an HTML or SVG file must not run script on our origin.
    response["Content-Security-Policy"] = "sandbox"
    return response
