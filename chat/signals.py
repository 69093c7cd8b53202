"""Signal handlers of the chat app."""

from django.db import DEFAULT_DB_ALIAS

from chat.services.answers import answers_interrupt_stale


def interrupt_stale_answers(sender, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """After `migrate` (which `manage.py serve` runs first, so: at startup), mark
    interrupted the answers whose server process died, as their leases tell."""
    if using == DEFAULT_DB_ALIAS:
        answers_interrupt_stale()
