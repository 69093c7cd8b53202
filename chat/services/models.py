"""The model list a user sees, in Open WebUI's shape and in OpenAI's (sync: ORM)."""

from typing import Any

from chat.services.catalog import Catalog, CatalogModel
from functions.models import Function, ModelSettings
from functions.services.plugins import (
    PluginUnavailable,
    model_allowed,
    model_wiring,
    plugin_call_for,
)


def _report(function: Function) -> dict[str, Any]:
    return function.current_revision.load_result if function.current_revision else {}


def _priority(function: Function) -> int:
    try:
        return plugin_call_for(function=function).priority
    except PluginUnavailable:
        return 0


def action_buttons(functions: list[Function]) -> list[dict[str, Any]]:
    """One button per action, or per entry of its `actions` list, in (priority, id) order."""
    buttons = []
    for function in sorted(functions, key=lambda f: (_priority(f), f.id)):
        report = _report(function)
        icon = report.get("icon")
        subs = report.get("sub_actions") or []
        if not subs:
            buttons.append(
                {
                    "id": function.id,
                    "name": function.name,
                    "description": function.description,
                    "icon": icon,
                }
            )
        for sub in subs:
            buttons.append(
                {
                    "id": f"{function.id}.{sub['id']}",
                    "name": sub.get("name") or f"{function.name} ({sub['id']})",
                    "description": function.description,
                    "icon": sub.get("icon_url") or icon,
                }
            )
    return buttons


def toggle_filters(functions: list[Function]) -> list[dict[str, Any]]:
    """The toggleable filters of a model (the only ones Open WebUI lists)."""
    toggles = [f for f in functions if _report(f).get("toggle")]
    return [
        {
            "id": f.id,
            "name": f.name,
            "description": f.description,
            "icon": _report(f).get("icon"),
            "has_user_valves": bool(_report(f).get("has_user_valves")),
        }
        for f in sorted(toggles, key=lambda f: (_priority(f), f.id))
    ]


def openwebui_model(model: CatalogModel) -> dict[str, Any]:
    """One entry of GET /api/models."""
    wiring = model_wiring(model.id)
    data = {
        "id": model.id,
        "name": model.name,
        "object": "model",
        "created": model.created,
        "owned_by": model.owned_by,
        "actions": action_buttons(wiring.actions),
        "filters": toggle_filters(wiring.filters),
        "has_user_valves": model.has_user_valves,
        "info": {"meta": {"defaultFilterIds": wiring.default_filter_ids}},
    }
    if model.pipe_id:
        data["pipe"] = {"type": "pipe"}
    return data


def model_dict(model: CatalogModel) -> dict[str, Any]:
    """The OpenAI-shaped model dict a plugin sees as __model__ (and in request MODELS)."""
    data = {
        "id": model.id,
        "name": model.name,
        "object": "model",
        "created": model.created,
        "owned_by": model.owned_by,
    }
    if model.pipe_id:
        data["pipe"] = {"type": "pipe"}
    return data


def openai_model(model: CatalogModel) -> dict[str, Any]:
    return {"id": model.id, "object": "model", "created": model.created, "owned_by": model.owned_by}


def visible_models(*, user, catalog: Catalog) -> list[CatalogModel]:
    """The catalog's models this user may use, sorted by name."""
    if user is None or not user.is_authenticated:
        return []
    # One query for every model's settings; a model without a row is open to everyone.
    restricted = {
        s.model_id: s
        for s in ModelSettings.objects.filter(model_id__in=list(catalog.models)).prefetch_related(
            "allowed_users", "allowed_groups"
        )
    }
    allowed = [
        m
        for m in catalog.models.values()
        if m.id not in restricted
        or model_allowed(user=user, model_id=m.id, settings=restricted[m.id])
    ]
    return sorted(allowed, key=lambda m: (m.name.lower(), m.id))
