"""Mirrors the names plugins import from open_webui.routers.retrieval.

fnplatform has no retrieval pipeline (no content extraction, embeddings or vector
store), so the forms import and validate as upstream's do, and each function
raises an error naming itself instead of pretending to have indexed anything.
"""

from typing import Any

from pydantic import BaseModel

NO_RETRIEVAL = (
    "open_webui.routers.retrieval.{} is not available: fnplatform has no retrieval "
    "pipeline (no extraction, embeddings or vector store)"
)


class ProcessFileForm(BaseModel):
    file_id: str
    content: str | None = None
    collection_name: str | None = None


class ProcessTextForm(BaseModel):
    name: str
    content: str
    collection_name: str | None = None


class ProcessUrlForm(BaseModel):
    collection_name: str
    url: str


class SearchForm(BaseModel):
    queries: list[str]


class QueryDocForm(BaseModel):
    collection_name: str
    query: str
    k: int | None = None
    k_reranker: int | None = None
    r: float | None = None
    hybrid: bool | None = None


def _refuse(name: str):
    def refused(*args: Any, **kwargs: Any):
        raise NotImplementedError(NO_RETRIEVAL.format(name))

    refused.__name__ = refused.__qualname__ = name
    refused.__doc__ = f"Refused: {NO_RETRIEVAL.format(name)}."
    return refused


# Upstream's are coroutines called as `await process_file(...)` and plainly (older
# code); raising at the call fails both the same way, at the line that made it.
process_file = _refuse("process_file")
process_text = _refuse("process_text")
process_web = _refuse("process_web")
process_web_search = _refuse("process_web_search")
process_files_batch = _refuse("process_files_batch")
query_doc_handler = _refuse("query_doc_handler")
query_collection_handler = _refuse("query_collection_handler")
save_docs_to_vector_db = _refuse("save_docs_to_vector_db")
