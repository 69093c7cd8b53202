"""Template helpers of the chat pages: the sidebar on every page of their layout."""

from django import template

from chat.pages import dom_key, sidebar_context

register = template.Library()


@register.filter(name="dom_key")
def dom_key_filter(value) -> str:
    """An id (a chat's, a message's) made safe for an HTML id."""
    return dom_key(str(value))


@register.inclusion_tag("chat/_sidebar.html", takes_context=True)
def chat_sidebar(context) -> dict:
    """The chat list beside every page of the chat layout (settings pages too)."""
    request = context["request"]
    chat = context.get("chat")
    active = chat.id if chat is not None else ""
    return sidebar_context(request.user, active=active) | {
        "request": request,
        "csrf_token": context.get("csrf_token"),
    }
