"""API shapes for valves: an arbitrary JSON object in, the public values dict out."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

CLEAR_KEY = "__clear__"

# Valves are the plugin's own schema, so the API speaks plain objects; the
# secrets in them are SECRET_MASK, never plaintext.
ValvesOut = dict[str, Any] | None


class ValvesIn(BaseModel):
    """An update: valve names to values (null means "back to the default").

    Secret valves sent as "" or "********" keep their stored value; list them
    under "__clear__" to remove them. A plain pydantic model rather than a ninja
    Schema, so a valve called "clear" is not mistaken for the "__clear__" key.
    """

    model_config = ConfigDict(extra="allow")

    clear: list[str] = Field(default_factory=list, alias=CLEAR_KEY)

    def values(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ErrorOut(BaseModel):
    """The error body fnplatform.api writes for 400, 403 and 404."""

    detail: str
    errors: dict[str, list[str]] | None = None
