"""Create the demo superuser "admin" on first run; do nothing once any staff user exists."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

USERNAME = "admin"
PASSWORD_ENV = "FNPLATFORM_ADMIN_PASSWORD"


class Command(BaseCommand):
    help = (
        f"Create superuser {USERNAME!r} if no staff user exists, with the password from "
        f"${PASSWORD_ENV} or a generated one printed once."
    )

    def handle(self, *args, **options) -> None:
        """Create the demo admin once and print its credentials."""
        User = get_user_model()
        # Any staff user counts, so a real deployment's own admin is never shadowed.
        if User.objects.filter(is_staff=True).exists():
            self.stdout.write("Staff user exists; not creating the demo admin.")
            return
        if User.objects.filter(username=USERNAME).exists():
            raise CommandError(f"A non-staff user named {USERNAME!r} exists; make a staff user.")
        password = os.environ.get(PASSWORD_ENV) or secrets.token_urlsafe(12)
        User.objects.create_superuser(USERNAME, "", password)
        self.stdout.write(
            self.style.SUCCESS(f"Demo admin created: username {USERNAME}, password {password}")
        )
