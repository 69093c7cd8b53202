"""Mirrors open_webui.routers.models: `get_models` and `get_base_models`, as plugins call them.

Both answer a list of ModelUserResponse, as upstream's router functions do (the
semantic-router filter adds their results together). fnplatform has no preset
("workspace") models, so both list the same models: those in Models.get_models().
Scoped like every shim: the models the calling user may use. `request` and
`user` are accepted for upstream's signatures; `user` does not widen the scope.
"""

from typing import Any

from ..models.models import Models, ModelUserResponse


async def get_models(request: Any = None, user: Any = None, **_: Any) -> list[ModelUserResponse]:
    """The models the calling user may use, pipes and configured models alike."""
    return await Models.get_models()


async def get_base_models(user: Any = None, **_: Any) -> list[ModelUserResponse]:
    return await Models.get_base_models()
