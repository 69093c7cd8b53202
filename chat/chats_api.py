"""Open WebUI's chat API (/api/v1/chats): the caller's chats, as its clients save them.

Scoped to the caller, staff included: another user's chat answers 404, like a
missing one. Operations translate to chat.services.chats and chat.selectors;
fnplatform.api maps their errors to statuses (bad documents: 400).
"""

from django.http import HttpRequest
from ninja import Query, Router

from chat.models import Chat
from chat.schemas import ChatFormIn, ChatOut, ChatTitleIdOut
from chat.selectors import chat_document, chat_get_for, chat_list_for
from chat.services.chats import chat_create, chat_delete, chat_update
from chat.services.history import epoch
from fnplatform.schemas import ErrorOut

router = Router(tags=["chats"])
ERRORS = {status: ErrorOut for status in (400, 401, 404)}


def chat_out(chat: Chat) -> ChatOut:
    return ChatOut(
        id=chat.id,
        user_id=str(chat.user_id),
        title=chat.title,
        chat=chat_document(chat=chat),
        updated_at=epoch(chat.updated_at),
        created_at=epoch(chat.created_at),
        archived=chat.archived,
        pinned=chat.pinned,
        meta=chat.meta or {},
        current_message_id=chat.current_message_id or None,
    )


def title_id_out(chat: Chat) -> ChatTitleIdOut:
    return ChatTitleIdOut(
        id=chat.id,
        title=chat.title,
        updated_at=epoch(chat.updated_at),
        created_at=epoch(chat.created_at),
    )


@router.post("/new", response={200: ChatOut, **ERRORS})
def create_chat(request: HttpRequest, payload: ChatFormIn):
    """Create a chat from Open WebUI's chat document."""
    chat = chat_create(user=request.auth, document=payload.chat, folder_id=payload.folder_id)
    return chat_out(chat)


# Past it the OFFSET overflows the database's integers (a 422, not a 500).
MAX_PAGE = 10**12


def _list(request: HttpRequest, page: int | None, include_pinned: bool) -> list[ChatTitleIdOut]:
    chats = chat_list_for(user=request.auth, page=page, include_pinned=include_pinned)
    return [title_id_out(chat) for chat in chats]


@router.get("/", response={200: list[ChatTitleIdOut], **ERRORS})
def list_chats(
    request: HttpRequest,
    page: int | None = Query(None, ge=1, le=MAX_PAGE),
    include_pinned: bool = False,
):
    """The caller's chats, newest first (archived and pinned ones apart); 60 a page."""
    return _list(request, page, include_pinned)


@router.get("/list", response={200: list[ChatTitleIdOut], **ERRORS})
def list_chats_alias(
    request: HttpRequest,
    page: int | None = Query(None, ge=1, le=MAX_PAGE),
    include_pinned: bool = False,
):
    """The same list, at Open WebUI's second path."""
    return _list(request, page, include_pinned)


@router.get("/{id}", response={200: ChatOut, **ERRORS})
def get_chat(request: HttpRequest, id: str):
    return chat_out(chat_get_for(user=request.auth, id=id))


@router.post("/{id}", response={200: ChatOut, **ERRORS})
def update_chat(request: HttpRequest, id: str, payload: ChatFormIn):
    """Merge a chat document into the chat (Open WebUI's update: messages kept unless
    listed in `deleted_message_ids`)."""
    chat = chat_update(
        chat=chat_get_for(user=request.auth, id=id),
        document=payload.chat,
        deleted_message_ids=payload.deleted_message_ids or (),
    )
    return chat_out(chat)


@router.delete("/{id}", response={200: bool, **ERRORS})
def delete_chat(request: HttpRequest, id: str):
    chat_delete(chat=chat_get_for(user=request.auth, id=id))
    return True
