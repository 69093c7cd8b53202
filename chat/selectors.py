"""Read-only queries for the chat app: upstream connections and stored files."""

from django.db.models import QuerySet

from chat.models import Connection, File


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


def file_get_for(*, user, pk: str) -> File:
    """Return a stored file its owner (or staff) may read; File.DoesNotExist otherwise,
    so another user's file looks the same as a missing one."""
    files = File.objects.all() if user.is_staff else File.objects.filter(user_id=user.pk)
    try:
        return files.get(pk=pk)
    except File.DoesNotExist:
        raise File.DoesNotExist(f"File {pk!r} not found.") from None
