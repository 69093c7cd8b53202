"""Create an API key for a user and print only the key, so scripts can capture it."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from fnplatform.accounts.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for USERNAME and print it (it is shown only this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="A label to tell the key apart.")

    def handle(self, *args, username: str, name: str, **options) -> None:
        """Print the new key and nothing else on stdout."""
        User = get_user_model()
        try:
            user = User.objects.get_by_natural_key(username)
        except User.DoesNotExist as exc:
            raise CommandError(f"No user named {username!r}.") from exc
        _, key = api_key_create(user=user, name=name)
        self.stdout.write(key)
