"""Request bodies of the chat API: the fields the server reads are typed, the rest pass.

Open WebUI clients send many keys (params, variables, stream_options, ...) that the
body carries on to filters and pipes, so unknown keys are kept as sent. The keys the
services read are typed here, so a wrong type is a 422 naming the field rather than
an AttributeError deep in a service. Plain pydantic models (not ninja Schemas), so
the extra keys survive validation unchanged.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class MessageIn(_Open):
    role: str
    # A string, or OpenAI's content parts; None for an assistant turn of tool calls.
    content: str | list[dict[str, Any]] | None = None


class MetadataIn(_Open):
    filter_ids: list[str] | None = None
    tool_ids: list[str] | None = None
    files: list[dict[str, Any]] | None = None
    features: dict[str, Any] | None = None


class BackgroundTasksIn(_Open):
    title_generation: bool = False
    tags_generation: bool = False


class _ChatIds(_Open):
    id: str | None = None
    chat_id: str | None = None
    session_id: str | None = None


class ChatCompletionIn(_ChatIds):
    """An OpenAI chat completion request, with Open WebUI's extras; also the body of
    /api/chat/completed (a finished conversation for the outlet filters)."""

    model: str = Field(min_length=1)
    messages: list[MessageIn]
    stream: bool | None = False
    metadata: MetadataIn | None = None
    background_tasks: BackgroundTasksIn | None = None
    filter_ids: list[str] | None = None
    tool_ids: list[str] | None = None
    features: dict[str, Any] | None = None
    files: list[dict[str, Any]] | None = None

    def body(self) -> dict[str, Any]:
        """The request as sent (unknown keys included), for the services and plugins."""
        return self.model_dump(exclude_unset=True)


class ActionIn(_ChatIds):
    """Open WebUI's /api/chat/actions/{id} body: the message and its conversation."""

    model: str = ""
    messages: list[MessageIn] = Field(default_factory=list)

    def body(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class TaskIn(_Open):
    """Open WebUI's body of /api/v1/tasks/{title,tags}/completions: the conversation to
    name or tag, and the model to ask (unknown keys reach __task_body__ as sent)."""

    model: str = Field(min_length=1)
    messages: list[MessageIn]
    chat_id: str | None = None

    def body(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


# The chats API (/api/v1/chats): Open WebUI's forms and responses.


class ChatFormIn(BaseModel):
    """Open WebUI's ChatForm: the chat document, and (on update) messages to delete."""

    chat: dict[str, Any]
    folder_id: str | None = None
    deleted_message_ids: list[str] | None = None


class ChatOut(BaseModel):
    """Open WebUI's ChatResponse (its `chat` the document, history built from the rows)."""

    id: str
    user_id: str
    title: str
    chat: dict[str, Any]
    updated_at: int
    created_at: int
    share_id: str | None = None
    archived: bool
    pinned: bool | None = False
    meta: dict[str, Any] = Field(default_factory=dict)
    folder_id: str | None = None
    current_message_id: str | None = None


class ChatTitleIdOut(BaseModel):
    """Open WebUI's ChatTitleIdResponse: one line of the chat list."""

    id: str
    title: str
    updated_at: int
    created_at: int
