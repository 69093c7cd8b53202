"""The `__request__` plugins get (functions.services.request), filled in for a caller.

Built once per request by the services that prepare a call (completions, actions),
from the door's origin (its HttpRequest or Channels scope, credentials left out):
- `state.user`: the caller, as the compat `Users` returns them;
- `app.state.config`: the Open WebUI settings plugins read, each with fnplatform's
  real value where it has one and Open WebUI's default otherwise; upstream API keys
  are blank (one per URL, so code that pairs them by index still works);
- `app.state.MODELS`: the models this caller may use, as `__model__` shows them,
  from the last full model listing plus the request's own model (Open WebUI's
  MODELS is likewise the last listing, not a fresh one per request).

Everything it reads from the database comes from the process caches
(fnplatform.state), so it answers on the event loop when they are warm.
"""

import importlib
from typing import Any

from chat.services.catalog import Catalog, last_listing
from chat.services.connections import env_connections, stored_connection_urls
from chat.services.models import model_dict
from functions.services.plugins import model_allowed
from functions.services.request import public_url, request_data

# Open WebUI's defaults (backend/open_webui/config.py) for the settings fnplatform
# has no counterpart of.
OPEN_WEBUI_DEFAULTS: dict[str, Any] = {
    "TASK_MODEL_PARAMS": {},
    "TITLE_GENERATION_PROMPT_TEMPLATE": "",
    "TAGS_GENERATION_PROMPT_TEMPLATE": "",
    "QUERY_GENERATION_PROMPT_TEMPLATE": "",
    "TOOLS_FUNCTION_CALLING_PROMPT_TEMPLATE": "",
    "WEB_SEARCH_ENGINE": "",
    "WEB_SEARCH_RESULT_COUNT": 3,
    "WEB_SEARCH_CONCURRENT_REQUESTS": 10,
    "WEB_SEARCH_DOMAIN_FILTER_LIST": [],
    "BYPASS_WEB_SEARCH_EMBEDDING_AND_RETRIEVAL": False,
    "IMAGE_GENERATION_ENGINE": "openai",
    "IMAGE_GENERATION_MODEL": "",
    "IMAGE_SIZE": "512x512",
    "IMAGE_STEPS": 50,
    "CODE_INTERPRETER_ENGINE": "pyodide",
    "CODE_EXECUTION_ENGINE": "pyodide",
    "RAG_EMBEDDING_ENGINE": "",
    "RAG_EMBEDDING_MODEL": "sentence-transformers/all-MiniLM-L6-v2",
    "TOP_K": 3,
    "CHUNK_SIZE": 1000,
    "CHUNK_OVERLAP": 100,
    "RELEVANCE_THRESHOLD": 0.0,
    "ENABLE_RAG_HYBRID_SEARCH": False,
    "RAG_FULL_CONTEXT": False,
    "DEFAULT_MODELS": "",
    "MODEL_ORDER_LIST": [],
    "DEFAULT_PROMPT_SUGGESTIONS": [],
}


def _upstream_urls() -> list[str]:
    # The stored connections' URLs, then the environment's: no key is decrypted here.
    stored = stored_connection_urls()
    return [public_url(url) for url in stored + [c.base_url for c in env_connections()]]


def openwebui_config(*, base_url: str = "") -> dict[str, Any]:
    """`request.app.state.config`: Open WebUI's setting names, fnplatform's values."""
    urls = _upstream_urls()
    return OPEN_WEBUI_DEFAULTS | {
        "WEBUI_URL": base_url.rstrip("/"),
        # Upstreams are OpenAI-compatible connections; there is no Ollama API of its own.
        "ENABLE_OPENAI_API": True,
        "OPENAI_API_BASE_URLS": urls,
        "OPENAI_API_KEYS": [""] * len(urls),  # never the keys
        "OPENAI_API_CONFIGS": {str(i): {"enable": True} for i in range(len(urls))},
        "ENABLE_OLLAMA_API": False,
        "OLLAMA_BASE_URLS": [],
        "OLLAMA_API_CONFIGS": {},
        # Background tasks run on the chat's own model, which is what "" means upstream.
        "TASK_MODEL": "",
        "TASK_MODEL_EXTERNAL": "",
        "ENABLE_TITLE_GENERATION": True,
        "ENABLE_TAGS_GENERATION": True,
        "ENABLE_FOLLOW_UP_GENERATION": False,
        "ENABLE_AUTOCOMPLETE_GENERATION": False,
        "ENABLE_SEARCH_QUERY_GENERATION": False,
        "ENABLE_RETRIEVAL_QUERY_GENERATION": False,
        "ENABLE_WEB_SEARCH": False,
        "ENABLE_IMAGE_GENERATION": False,
        "ENABLE_CODE_INTERPRETER": False,
        "ENABLE_CODE_EXECUTION": False,
        "ENABLE_DIRECT_CONNECTIONS": False,
        "TOOL_SERVER_CONNECTIONS": [],
        "ENABLE_API_KEY": True,
        "ENABLE_SIGNUP": False,
    }


def caller_model(user) -> dict[str, Any]:
    """The caller as the compat `Users.get_user_by_id` gives them, as data."""
    if user is None or not user.is_authenticated:
        return {}
    users = importlib.import_module("open_webui.models.users")  # the plugin-facing module
    return users.to_user_model(user).model_dump(mode="json")


def request_models(*, user, catalog: Catalog | None) -> dict[str, dict]:
    """`request.app.state.MODELS`: the models of the last listing (and this request's)
    the user may use, by id, sorted by name as the model list is."""
    known = {**last_listing().models, **(catalog.models if catalog else {})}
    allowed = [m for m in known.values() if model_allowed(user=user, model_id=m.id)]
    allowed.sort(key=lambda m: (m.name.lower(), m.id))
    return {m.id: model_dict(m) for m in allowed}


def plugin_request_for(*, user, origin: dict | None, catalog: Catalog | None = None) -> dict:
    """The plain data of `__request__` for one request of this user (sync; from the
    caches, so on the event loop too when they are warm, else state.Miss)."""
    origin = origin or {}
    return request_data(
        origin=origin,
        user=caller_model(user),
        config=openwebui_config(base_url=origin.get("base_url", "")),
        models=request_models(user=user, catalog=catalog),
    )
