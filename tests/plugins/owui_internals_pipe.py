"""
title: Folder Rules Router
author: fnplatform tests
version: 1.2.0
description: Keeps folder rules, converts payloads for an Ollama backend, and indexes transcripts.
"""

# Style: the corpus's pipes that reach into Open WebUI's internals: folder_memory (Folders,
# FolderUpdateForm), add_to_memories (Users from routers.users), video_transcription
# (process_file, ProcessFileForm), semantic_router (convert_payload_openai_to_ollama),
# async_context_compression (open_webui.internal.db, open_webui.main.app), and the tools
# that read open_webui.config.WEBUI_URL.value / get_config(). Every failure is caught and
# reported in the answer, as those plugins log and carry on.
import json

from open_webui.config import WEBUI_URL, get_config
from open_webui.internal import db as owui_db
from open_webui.internal.db import get_async_db_context
from open_webui.main import app as webui_app
from open_webui.models.folders import FolderUpdateForm, Folders
from open_webui.routers.retrieval import ProcessFileForm, process_file
from open_webui.routers.users import Users
from open_webui.utils.payload import (
    apply_model_params_to_body_openai,
    apply_model_system_prompt_to_body,
    convert_payload_openai_to_ollama,
)


def _discover_engine(db_module):
    try:
        with db_module.get_db() as session:
            return session.get_bind()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


ENGINE_AT_IMPORT = _discover_engine(owui_db)
STATE_AT_IMPORT = getattr(webui_app.state, "config", None)


def _error(call):
    try:
        call()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


class Pipe:
    async def pipe(self, body: dict, __user__: dict, __request__=None) -> str:
        user = Users.get_user_by_id(__user__["id"])
        folder = Folders.get_folder_by_id_and_user_id("f1", user.id)
        folders = await Folders.get_folders_by_user_id(user.id)
        update = _error(
            lambda: Folders.update_folder_by_id_and_user_id(
                "f1", user.id, FolderUpdateForm(data={"system_prompt": "x"})
            )
        )
        indexed = _error(
            lambda: process_file(__request__, ProcessFileForm(file_id="v1", content="hi"), user=user)
        )
        async with get_async_db_context() as db:
            session_use = _error(lambda: db.execute("select 1"))
        openai_body = {
            "model": "llama3",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "look "},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ]},
            ],
            "stream": True,
            "max_tokens": 5,
            "options": {"max_tokens": 7, "keep_alive": "5m", "system": "be brief"},
            "stop": ["\\n"],
        }
        params = {"temperature": "0.5", "system": "dropped", "custom_params": {"top_k": "3"}}
        with_params = apply_model_params_to_body_openai(dict(params), {"model": "m"})
        with_system = apply_model_system_prompt_to_body(
            {"system": "Hi {{USER_NAME}}"}, {"messages": [{"role": "user", "content": "q"}]}, user
        )
        return json.dumps(
            {
                "user": user.email,
                "folder": folder,
                "folders": folders,
                "update": update,
                "indexed": indexed,
                "engine_at_import": ENGINE_AT_IMPORT,
                "base": owui_db.Base is not None,
                "session_use": session_use,
                "state_at_import": STATE_AT_IMPORT,
                "webui_url": webui_app.state.config.WEBUI_URL,
                "same_models": webui_app.state.MODELS == __request__.app.state.MODELS,
                "config_url": WEBUI_URL.value,
                "config_doc": get_config()["webui"]["url"],
                "ollama": convert_payload_openai_to_ollama(openai_body),
                "with_params": with_params,
                "with_system": with_system["messages"][0],
            }
        )
