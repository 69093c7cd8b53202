"""Open WebUI's file endpoints that plugin output links to: `/api/v1/files/{id}` and
`/api/v1/files/{id}/content` (what `upload_file_handler` and `upload_image` give
plugins to embed). A file is served to its owner, or staff; to anyone else it is
missing (404), as upstream answers.
"""

import importlib
import mimetypes
from urllib.parse import quote

from django.http import FileResponse, Http404, HttpRequest
from ninja import Router

from chat.selectors import file_get_for

router = Router(tags=["files"])


def _stored_path(path: str):
    # The plugin-facing module: the upload folder plugins wrote into.
    storage = importlib.import_module("open_webui.storage.provider")
    try:
        target = storage.resolve(path)
    except ValueError:
        raise Http404("The file's content is not stored here.") from None
    if not target.is_file():
        raise Http404("The file's content is gone.")
    return target


@router.get("/{id}")
def get_file(request: HttpRequest, id: str):
    files = importlib.import_module("open_webui.models.files")
    row = file_get_for(user=request.auth, pk=id)
    return files.to_file_model(row).model_dump(mode="json")


@router.get("/{id}/content")
def get_file_content(request: HttpRequest, id: str, attachment: bool = False):
    row = file_get_for(user=request.auth, pk=id)
    meta = row.meta or {}
    name = str(meta.get("name") or row.filename)
    content_type = meta.get("content_type") or mimetypes.guess_type(name)[0]
    response = FileResponse(
        _stored_path(row.path).open("rb"), content_type=content_type or "application/octet-stream"
    )
    disposition = "attachment" if attachment else "inline"
    response["Content-Disposition"] = f"{disposition}; filename*=UTF-8''{quote(name)}"
    response["X-Content-Type-Options"] = "nosniff"
    # Plugins choose what they store: an HTML or SVG file must not run script on our origin.
    response["Content-Security-Policy"] = "sandbox"
    return response
