"""
title: Audio Keeper
author: fnplatform tests
version: 0.4.1
description: Saves generated media to Open WebUI storage with upload_file_handler and links it.
"""

# Style: the corpus's ComfyUI / TTS / video tools and pipes: build fastapi's UploadFile
# around io.BytesIO with a content-type header, call upload_file_handler(request, file=...,
# metadata={}, process=False, user=...), link /api/v1/files/{id}/content, or resolve it
# with request.app.url_path_for("get_file_content_by_id", id=...). A synthetic Request
# around open_webui.main.app is what async_context_compression builds outside a request.
import io
import json

from fastapi import UploadFile
from fastapi.requests import Request
from open_webui.main import app as webui_app
from open_webui.models.users import Users
from open_webui.routers.files import Files, upload_file, upload_file_handler
from starlette.datastructures import Headers

AT_IMPORT = getattr(webui_app.state, "config", None)


class Pipe:
    def __init__(self):
        self.name = "Audio Keeper"

    async def pipe(self, body: dict, __user__: dict, __request__=None) -> str:
        user = await Users.get_user_by_id(__user__["id"])
        upload = UploadFile(
            file=io.BytesIO(b"RIFF fake wave"),
            filename="../../song.wav",
            headers={"content-type": "audio/wav"},
        )
        file_item = await upload_file_handler(
            __request__, file=upload, metadata={}, process=False, user=user
        )
        relative_path = __request__.app.url_path_for("get_file_content_by_id", id=file_item.id)
        synthetic = Request(scope={"type": "http", "app": webui_app})
        processed = await upload_file(
            request=__request__,
            file=UploadFile(
                file=io.BytesIO(b'{"a": 1}'),
                filename="plan.json",
                headers=Headers({"content-type": "application/json"}),
            ),
            process=True,
            user=user,
            metadata={"source": "planner"},
        )
        stored = Files.get_file_by_id(file_item.id)
        return json.dumps(
            {
                "id": file_item.id,
                "link": f"/api/v1/files/{file_item.id}/content",
                "relative_path": relative_path,
                "name": file_item.filename,
                "content_type": file_item.meta["content_type"],
                "size": file_item.meta["size"],
                "stored_user": stored.user_id,
                "processed_status": processed["status"],
                "processed_data": processed["data"]["status"],
                "synthetic_webui_url": synthetic.app.state.config.WEBUI_URL,
                "models": sorted(webui_app.state.MODELS),
                "at_import": AT_IMPORT,
            }
        )
