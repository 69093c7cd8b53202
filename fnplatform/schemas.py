"""Response shapes shared by every router."""

from ninja import Schema


class ErrorOut(Schema):
    """What fnplatform.api answers for a refused request (and ninja for a missing login)."""

    detail: str
