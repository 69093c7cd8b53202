"""Read-only queries for the chat app: upstream connections (chats arrive later)."""

from django.db.models import QuerySet

from chat.models import Connection


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
