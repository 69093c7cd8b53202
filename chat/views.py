"""The chat pages: a new chat, a chat, the sidebar, and the small changes a page makes
(model, toggle filters, rename, delete, an action on a message).

Views only translate: chats change through chat.services.chats, answers start
through chat.services.live (the same runs the API's completions with a chat_id
make), actions run through chat.services.actions. Once a chat page is open, its
socket (chat.consumers) carries sends, stops and the streamed answers. Another
user's chat is a 404, like a missing one.
"""

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from chat.downloads import file_response
from chat.models import Chat, File, Message, new_id
from chat.pages import (
    MessageView,
    ModelChoice,
    chat_filter_ids,
    chat_model_id,
    model_choices,
    pick_model,
    render_message,
    sidebar_context,
    thread_views,
)
from chat.selectors import (
    chat_get_for,
    default_model_of,
    file_get_own,
    message_branch,
    message_get,
)
from chat.services.actions import aprepare_action, perform_page_action
from chat.services.catalog import build_catalog
from chat.services.chats import (
    chat_choose_model,
    chat_create,
    chat_delete,
    chat_rename,
    chat_switch_filter,
)
from chat.services.live import start_turn
from chat.services.preferences import default_model_set
from functions.services.plugins import PluginUnavailable
from functions.services.request import origin_from_http
from functions.services.runtime import HookError


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _own_chat(request: HttpRequest, chat_id: str) -> Chat:
    try:
        return chat_get_for(user=request.user, id=chat_id)
    except Chat.DoesNotExist:
        raise Http404("No such chat.") from None


async def _choices(user) -> list[ModelChoice]:
    catalog = await build_catalog()
    return await sync_to_async(model_choices)(user=user, catalog=catalog)


def _problem(request: HttpRequest, message: str, status: int = 400) -> HttpResponse:
    """A refusal the page shows where it asked (an alert), with its 4xx status."""
    html = render_to_string("chat/_problem.html", {"message": message, "oob": True})
    # Only the alert is swapped: what the page asked to change stays as it was.
    return HttpResponse(html, status=status, headers={"HX-Reswap": "none"})


# A new chat.


def _new_chat_page(request, choices, *, chosen=None, content="", problem=""):
    model = chosen or pick_model(choices, default_model_of(user=request.user))
    context = {
        "choices": choices,
        "model": model,
        "filter_ids": model.default_filter_ids if model else [],
        "content": content,
        "problem": problem,
    }
    return render(request, "chat/new.html", context, status=400 if problem else 200)


def _new_turn(choices: list[ModelChoice], post) -> tuple[ModelChoice, str, list[str]]:
    """What a new chat's form asks for, checked: a model the user may use, a message,
    and the model's own toggle filters."""
    model = pick_model(choices, post.get("model", ""))
    if model is None or model.id != post.get("model"):
        raise ValidationError("Pick one of the models offered.")
    content = post.get("content", "")
    if not content.strip():
        raise ValidationError("Write a message first.")
    offered = {toggle["id"] for toggle in model.toggles}
    return model, content, sorted(set(post.getlist("filter_ids")) & offered)


@login_required
@require_http_methods(["GET", "POST"])
async def new_chat(request: HtmxHttpRequest) -> HttpResponse:
    """GET: the new chat page. POST: create the chat with the user's first message,
    start its answer, and open the chat (where its socket shows the answer stream)."""
    user = await request.auser()
    choices = await _choices(user)
    if request.method == "GET":
        return await sync_to_async(_new_chat_page)(request, choices)
    try:
        model, content, filter_ids = _new_turn(choices, request.POST)
    except ValidationError as exc:
        chosen = pick_model(choices, request.POST.get("model", ""))
        page = sync_to_async(_new_chat_page)
        return await page(
            request,
            choices,
            chosen=chosen,
            content=request.POST.get("content", ""),
            problem=exc.messages[0],
        )
    chat = await sync_to_async(_create_chat)(user, model, filter_ids, content)
    await start_turn(
        user=user,
        chat_id=chat.id,
        content=content,
        model=model.id,
        extra={"filter_ids": filter_ids},
        origin=origin_from_http(request),
    )
    return redirect("chat:chat", chat_id=chat.id)


def _create_chat(user, model: ModelChoice, filter_ids: list[str], content: str) -> Chat:
    default_model_set(user=user, model_id=model.id)
    # Named after its first message, as Open WebUI names a chat without title generation.
    title = content.strip().splitlines()[0][:80]
    document = {"title": title, "models": [model.id], "filter_ids": filter_ids}
    return chat_create(user=user, document=document)


@login_required
@require_GET
async def model_panel(request: HtmxHttpRequest) -> HttpResponse:
    """The new chat page's model description and toggle chips, for the model picked."""
    choices = await _choices(await request.auser())
    model = pick_model(choices, request.GET.get("model", ""))
    context = {"model": model, "filter_ids": model.default_filter_ids if model else []}
    return await sync_to_async(render)(request, "chat/new.html#model-panel", context)


# A chat.


def _chat_context(request, chat: Chat, choices: list[ModelChoice]) -> dict[str, Any]:
    model = pick_model(choices, chat_model_id(chat))
    thread = thread_views(message_branch(chat=chat), model.actions if model else [])
    return {
        "chat": chat,
        "choices": choices,
        "model": model,
        "filter_ids": chat_filter_ids(chat),
        "thread": thread,
        # An answer still streaming (another tab's, or the tab's before a reload).
        "busy": any(view.streaming for view in thread),
        # This page's id on its socket (chat.dialogs: which page runs a plugin script).
        "tab_id": new_id(),
    }


@login_required
@require_GET
async def chat_page(request: HtmxHttpRequest, chat_id: str) -> HttpResponse:
    """A chat: its conversation, composer, model and toggles; its socket streams."""
    choices = await _choices(await request.auser())

    def page() -> HttpResponse:
        chat = _own_chat(request, chat_id)
        return render(request, "chat/chat.html", _chat_context(request, chat, choices))

    return await sync_to_async(page)()


@login_required
@require_POST
async def choose_model(request: HtmxHttpRequest, chat_id: str) -> HttpResponse:
    """Answer the chat with another model; its toggles start from that model's defaults."""
    user = await request.auser()
    choices = await _choices(user)

    def choose() -> HttpResponse:
        chat = _own_chat(request, chat_id)
        model = pick_model(choices, request.POST.get("model", ""))
        if model is None or model.id != request.POST.get("model"):
            return _problem(request, "Pick one of the models offered.")
        chat_choose_model(chat=chat, model_id=model.id, filter_ids=model.default_filter_ids)
        default_model_set(user=user, model_id=model.id)
        chat = _own_chat(request, chat_id)
        context = {"chat": chat, "model": model, "filter_ids": chat_filter_ids(chat)}
        return render(request, "chat/chat.html#model-panel", context)

    return await sync_to_async(choose)()


@login_required
@require_POST
async def switch_filter(request: HtmxHttpRequest, chat_id: str, filter_id: str) -> HttpResponse:
    """Switch one of the chat model's toggle filters on or off for this chat."""
    choices = await _choices(await request.auser())

    def switch() -> HttpResponse:
        chat = _own_chat(request, chat_id)
        model = pick_model(choices, chat_model_id(chat))
        if model is None or filter_id not in {t["id"] for t in model.toggles}:
            return _problem(request, "This model offers no such filter.", 404)
        on = request.POST.get("on") == "true"
        filter_ids = chat_switch_filter(chat=chat, filter_id=filter_id, on=on)
        context = {"chat": chat, "model": model, "filter_ids": filter_ids}
        return render(request, "chat/chat.html#chips", context)

    return await sync_to_async(switch)()


# The sidebar.


@login_required
@require_GET
def sidebar(request: HtmxHttpRequest) -> HttpResponse:
    """The chat list, searched by title and message text when `q` is given."""
    query = request.GET.get("q", "")[:200]
    context = sidebar_context(request.user, query=query, active=request.GET.get("active", ""))
    return render(request, "chat/_sidebar.html#chat-list", context)


@login_required
@require_http_methods(["GET", "POST"])
def rename_chat(request: HtmxHttpRequest, chat_id: str) -> HttpResponse:
    """GET: the rename form in place of the chat's entry. POST: rename; the entry."""
    chat = _own_chat(request, chat_id)
    context = {"chat": chat, "active": request.GET.get("active") or request.POST.get("active", "")}
    if request.method == "GET":
        return render(request, "chat/_sidebar.html#rename-form", context)
    try:
        context["chat"] = chat_rename(chat=chat, title=request.POST.get("title", ""))
    except ValidationError as exc:
        context["problem"] = exc.messages[0]
        return render(request, "chat/_sidebar.html#rename-form", context, status=400)
    return render(request, "chat/_sidebar.html#chat-entry", context)


@login_required
@require_POST
def delete_chat(request: HtmxHttpRequest, chat_id: str) -> HttpResponse:
    """Delete the chat (a run still answering in it stops); leave it if it was open."""
    chat_delete(chat=_own_chat(request, chat_id))
    if request.POST.get("active") == chat_id or not request.htmx:
        url = reverse("chat:new")
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    return HttpResponse("")


# A message.


@login_required
@require_GET
def edit_message(request: HtmxHttpRequest, chat_id: str) -> HttpResponse:
    """The form that edits one of the user's messages and sends it anew."""
    chat = _own_chat(request, chat_id)
    message_id = request.GET.get("message_id", "")
    try:
        message = message_get(chat=chat, message_id=message_id)
    except Message.DoesNotExist:
        raise Http404("No such message.") from None
    if message.role != "user":
        return _problem(request, "Only your own messages can be edited.")
    context = {"m": MessageView.of(message), "chat_id": chat.id}
    return render(request, "chat/_message.html#edit-form", context)


def _action_body(request, chat_id: str, message_id: str, model_id: str) -> dict[str, Any]:
    chat = _own_chat(request, chat_id)
    branch = message_branch(chat=chat)
    ids = [m.message_id for m in branch]
    if message_id not in ids:
        raise Http404("No such message.")
    upto = branch[: ids.index(message_id) + 1]
    messages = [{"id": m.message_id, "role": m.role, "content": m.content} for m in upto]
    return {"model": model_id, "messages": messages, "chat_id": chat.id, "id": message_id}


@login_required
@require_POST
async def run_action(request: HtmxHttpRequest, chat_id: str) -> HttpResponse:
    """Run one of the model's actions (`action_id`) on a message (`message_id`); answer
    the message as it is now. What the action emits reaches the chat's open pages as
    it happens."""
    user = await request.auser()
    message_id = request.POST.get("message_id", "")
    action_id = request.POST.get("action_id", "")
    choices = await _choices(user)

    def body() -> dict[str, Any]:
        model_id = chat_model_id(_own_chat(request, chat_id))
        return _action_body(request, chat_id, message_id, model_id)

    payload = await sync_to_async(body)()
    try:
        req = await aprepare_action(
            user=user, action_id=action_id, body=payload, origin=origin_from_http(request)
        )
        # The server's: leaving the page (while a dialog waits, say) does not stop it.
        await perform_page_action(req)
    except ObjectDoesNotExist as exc:
        return _problem(request, str(exc), 404)
    except PermissionDenied as exc:
        return _problem(request, str(exc), 403)
    except PluginUnavailable as exc:
        return _problem(request, exc.messages[0], 503)
    except HookError as exc:
        # The plugin's own failure: told on its message, where the user clicked.
        return _problem(request, f"The action failed: {exc.message or exc}", 502)
    return await sync_to_async(_message_now)(request, chat_id, message_id, choices)


# A file a plugin attached to a message.


@login_required
@require_GET
def download_file(request: HtmxHttpRequest, file_id: str) -> HttpResponse:
    """One of the user's own files (a message's `files`), downloaded, or shown inline
    (`inline=1`: an image under its message); anyone else's is a 404."""
    try:
        row = file_get_own(user=request.user, pk=file_id)
    except File.DoesNotExist:
        raise Http404("No such file.") from None
    return file_response(row, attachment=request.GET.get("inline") != "1")


def _message_now(request, chat_id: str, message_id: str, choices) -> HttpResponse:
    context = _chat_context(request, _own_chat(request, chat_id), choices)
    view = next((v for v in context["thread"] if v.message_id == message_id), None)
    if view is None:
        raise Http404("No such message.")
    return HttpResponse(render_message(view, chat_id=chat_id))
