"""Open WebUI's file endpoints that plugin output links to: `/api/v1/files/{id}` and
`/api/v1/files/{id}/content` (what `upload_file_handler` and `upload_image` give
plugins to embed). A file is served to its owner, or staff; to anyone else it is
missing (404), as upstream answers.
"""

import importlib

from django.http import HttpRequest
from ninja import Router

from chat.downloads import file_response
from chat.selectors import file_get_for

router = Router(tags=["files"])


@router.get("/{id}")
def get_file(request: HttpRequest, id: str):
    files = importlib.import_module("open_webui.models.files")
    row = file_get_for(user=request.auth, pk=id)
    return files.to_file_model(row).model_dump(mode="json")


@router.get("/{id}/content")
def get_file_content(request: HttpRequest, id: str, attachment: bool = False):
    row = file_get_for(user=request.auth, pk=id)
    return file_response(row, attachment=attachment)
