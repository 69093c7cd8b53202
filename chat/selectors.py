"""Read-only queries for the chat app: upstream connections, chats and stored files."""

from datetime import datetime

from django.db.models import Q, QuerySet

from chat.models import Chat, ChatPreferences, Connection, File, Message, MessageStatus
from chat.services.history import build_document

# Open WebUI's chat list pages.
CHATS_PER_PAGE = 60


def connection_list(*, active: bool | None = None) -> QuerySet[Connection]:
    """Return connections by name, optionally only the active (or inactive) ones."""
    qs = Connection.objects.all()
    if active is not None:
        qs = qs.filter(is_active=active)
    return qs.order_by("name", "pk")


def connection_get(*, pk: int) -> Connection:
    """Return one connection; raise Connection.DoesNotExist naming the pk."""
    try:
        return Connection.objects.get(pk=pk)
    except Connection.DoesNotExist:
        raise Connection.DoesNotExist(f"Connection {pk!r} not found.") from None


def file_get_for(*, user, pk: str) -> File:
    """Return a stored file its owner (or staff) may read; File.DoesNotExist otherwise,
    so another user's file looks the same as a missing one."""
    files = File.objects.all() if user.is_staff else File.objects.filter(user_id=user.pk)
    try:
        return files.get(pk=pk)
    except File.DoesNotExist:
        raise File.DoesNotExist(f"File {pk!r} not found.") from None


def file_get_own(*, user, pk: str) -> File:
    """Return one of `user`'s own files (staff read only theirs too: the chat pages'
    download links); File.DoesNotExist otherwise."""
    try:
        return File.objects.get(pk=pk, user_id=user.pk)
    except File.DoesNotExist:
        raise File.DoesNotExist(f"File {pk!r} not found.") from None


def chat_list_for(*, user, page: int | None = None, include_pinned: bool = False) -> QuerySet[Chat]:
    """The user's own chats, most recently updated first, as Open WebUI's sidebar lists
    them: archived ones left out, pinned ones too unless asked for; `page` (from 1)
    gives 60 at a time."""
    chats = Chat.objects.filter(user_id=user.pk, archived=False)
    if not include_pinned:
        chats = chats.filter(pinned=False)
    chats = chats.order_by("-updated_at", "id").defer("chat")
    if page is None:
        return chats
    start = (max(page, 1) - 1) * CHATS_PER_PAGE
    return chats[start : start + CHATS_PER_PAGE]


def chat_get_for(*, user, id: str) -> Chat:
    """Return one of the user's own chats; Chat.DoesNotExist otherwise, so another
    user's chat looks the same as a missing one (staff included: the chats API is
    the caller's; staff reach others' chats in the admin)."""
    try:
        return Chat.objects.get(pk=id, user_id=user.pk)
    except Chat.DoesNotExist:
        raise Chat.DoesNotExist(f"Chat {id!r} not found.") from None


def chat_to_answer_in(*, user, chat_id: str | None) -> Chat | None:
    """The chat a completion names (its `chat_id`), if it is the caller's; None when
    it names none or a temporary one ("local:..."). Raise Chat.DoesNotExist for one
    that does not exist or is another user's (Open WebUI refuses both, rather than
    answer into a chat that is not there)."""
    if not isinstance(chat_id, str) or not chat_id or chat_id.startswith("local:"):
        return None
    chat = Chat.objects.filter(pk=chat_id).only("id", "user_id").first()
    if chat is None or chat.user_id != user.pk:
        raise Chat.DoesNotExist(f"Chat {chat_id!r} not found.")
    return chat


def message_list(*, chat: Chat) -> list[Message]:
    """The chat's messages in insertion order (Open WebUI's sibling order)."""
    return list(Message.objects.filter(chat_id=chat.pk).order_by("pk"))


def chat_document(*, chat: Chat, now: datetime | None = None) -> dict:
    """Open WebUI's chat document, its `history` and `messages` built from the rows
    (so a message streaming now shows what its run saved so far)."""
    document = chat.chat if isinstance(chat.chat, dict) else {}
    return build_document(document, message_list(chat=chat), chat.current_message_id, now)


def message_get(*, chat: Chat, message_id: str) -> Message:
    """One message of the chat; Message.DoesNotExist naming it otherwise."""
    try:
        return Message.objects.get(chat_id=chat.pk, message_id=message_id)
    except Message.DoesNotExist:
        raise Message.DoesNotExist(f"Message {message_id!r} not found.") from None


def streaming_messages(*, chat_id: str, user=None) -> QuerySet[Message]:
    """The chat's messages a run is writing now (of `user`'s chat, unless staff)."""
    messages = Message.objects.filter(chat_id=chat_id, status=MessageStatus.STREAMING)
    if user is not None and not user.is_staff:
        messages = messages.filter(Q(chat__user_id=user.pk))
    return messages


def default_model_of(*, user) -> str:
    """The model a new chat of the user's starts with ("" before they picked one)."""
    preferences = ChatPreferences.objects.filter(user_id=user.pk).only("default_model").first()
    return preferences.default_model if preferences else ""


def chat_search_for(*, user, query: str, limit: int = 200) -> QuerySet[Chat]:
    """The user's chats whose title or any message holds `query` (case aside), most
    recent first, as the sidebar's search finds them."""
    words = query.strip()
    chats = chat_list_for(user=user, include_pinned=True)
    if words:
        in_messages = Message.objects.filter(content__icontains=words).values("chat_id")
        chats = chats.filter(Q(title__icontains=words) | Q(pk__in=in_messages))
    return chats[:limit]


def message_branch(*, chat: Chat) -> list[Message]:
    """The conversation the chat shows: its current message and those it answers, first
    message first (Open WebUI shows the current branch of the history)."""
    rows = {row.pk: row for row in message_list(chat=chat)}
    by_id = {row.message_id: row for row in rows.values()}
    path, row = [], by_id.get(chat.current_message_id)
    while row is not None and len(path) < len(rows):
        path.append(row)
        row = rows.get(row.parent_id)
    return path[::-1]
