"""Mirrors open_webui.models.messages: `Messages`, `MessageModel`, `MessageForm` and friends.

Upstream's message table holds the messages of *channels* (its team chat rooms), not
chat turns (those live in the chat document: `open_webui.models.chats`). fnplatform
has no channels, so there are no channel messages for anyone: reads answer None,
[] or 0, awaited or not, scoped like every table (nothing outside plugin calls).
Writes would create channel messages nobody can see, so each raises
PermissionError naming the method rather than pretending to store them.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict

from .._dual import dual

WRITE_REFUSED = "Messages.{} is not available: fnplatform has no channels to post in."


class MessageReactionModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    user_id: str
    message_id: str
    name: str
    created_at: int


class MessageModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    user_id: str
    channel_id: str | None = None
    reply_to_id: str | None = None
    parent_id: str | None = None
    is_pinned: bool = False
    pinned_by: str | None = None
    pinned_at: int | None = None
    content: str
    data: dict | None = None
    meta: dict | None = None
    created_at: int  # nanoseconds, as upstream
    updated_at: int


# Upstream's `Message` is the SQLAlchemy row; plugins use it as a type or in queries.
Message = MessageModel


class MessageForm(BaseModel):
    temp_id: str | None = None
    content: str
    reply_to_id: str | None = None
    parent_id: str | None = None
    data: dict | None = None
    meta: dict | None = None


class Reactions(BaseModel):
    name: str
    users: list[dict]
    count: int


class MessageUserResponse(MessageModel):
    user: dict | None = None


class MessageReplyToResponse(MessageUserResponse):
    reply_to_message: MessageUserResponse | None = None


class MessageWithReactionsResponse(MessageUserResponse):
    reactions: list[Reactions] = []


class MessageResponse(MessageReplyToResponse):
    latest_reply_at: int | None = None
    reply_count: int = 0
    reactions: list[Reactions] = []


def _refuse(action: str):
    def refused(self, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(WRITE_REFUSED.format(action))

    refused.__name__ = action
    return refused


class MessageTable:
    @dual
    def get_message_by_id(self, id: str, db: Any = None) -> MessageResponse | None:
        return None

    @dual
    def get_messages_by_channel_id(
        self, channel_id: str, skip: int = 0, limit: int = 50, db: Any = None
    ) -> list[MessageReplyToResponse]:
        return []

    @dual
    def get_messages_by_parent_id(
        self, channel_id: str, parent_id: str, skip: int = 0, limit: int = 50, db: Any = None
    ) -> list[MessageReplyToResponse]:
        return []

    @dual
    def get_thread_replies_by_message_id(
        self, id: str, db: Any = None
    ) -> list[MessageReplyToResponse]:
        return []

    @dual
    def get_reply_user_ids_by_message_id(self, id: str, db: Any = None) -> list[str]:
        return []

    @dual
    def get_last_message_by_channel_id(self, channel_id: str, db: Any = None):
        return None

    @dual
    def get_pinned_messages_by_channel_id(
        self, channel_id: str, skip: int = 0, limit: int = 50, db: Any = None
    ) -> list[MessageModel]:
        return []

    @dual
    def get_reactions_by_message_id(self, id: str, db: Any = None) -> list[Reactions]:
        return []

    @dual
    def get_unread_message_count(
        self, channel_id: str, user_id: str, last_read_at: int | None = None, db: Any = None
    ) -> int:
        return 0

    insert_new_message = _refuse("insert_new_message")
    update_message_by_id = _refuse("update_message_by_id")
    update_is_pinned_by_id = _refuse("update_is_pinned_by_id")
    add_reaction_to_message = _refuse("add_reaction_to_message")
    remove_reaction_by_id_and_user_id_and_name = _refuse(
        "remove_reaction_by_id_and_user_id_and_name"
    )
    delete_reactions_by_id = _refuse("delete_reactions_by_id")
    delete_replies_by_id = _refuse("delete_replies_by_id")
    delete_message_by_id = _refuse("delete_message_by_id")


Messages = MessageTable()
