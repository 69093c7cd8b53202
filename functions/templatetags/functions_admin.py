"""Template tags of the functions admin: the quarantine notice on the admin index."""

from django import template

from fnplatform.permissions import has_perm
from functions import selectors

register = template.Library()


@register.inclusion_tag("admin/functions/_quarantined.html", takes_context=True)
def quarantined_functions(context) -> dict:
    """List quarantined functions with links, for staff who may view functions."""
    user = getattr(context.get("request"), "user", None)
    if not has_perm(user, "functions.view_function"):
        return {"functions": []}
    return {"functions": list(selectors.function_list_quarantined())}
