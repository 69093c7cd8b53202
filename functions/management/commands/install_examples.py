"""Install the bundled example functions (functions/examples/*.py) that are missing."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from functions.models import Function
from functions.services.functions import (
    function_create,
    function_set_active,
    function_set_global,
)

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"


class Command(BaseCommand):
    help = "Install the example functions that are not installed yet; never overwrites edits."

    def handle(self, *args, **options) -> None:
        staff = get_user_model().objects.filter(is_staff=True, is_active=True).order_by("pk")
        author = staff.first()
        if author is None:
            raise CommandError("No staff user exists; run `manage.py ensure_demo_admin` first.")
        for path in sorted(EXAMPLES_DIR.glob("*.py")):
            self._install(author, path)

    def _install(self, author, path: Path) -> None:
        function_id = path.stem
        if Function.objects.filter(pk=function_id).exists():
            return
        try:
            function = function_create(
                user=author, id=function_id, content=path.read_text(), note="Bundled example"
            )
            function = function_set_active(user=author, function=function, active=True)
            if function.type in ("filter", "action"):
                # Global, so they work out of the box: on every model, with no wiring.
                function = function_set_global(user=author, function=function, is_global=True)
        except ValidationError as exc:
            self.stderr.write(f"Example {function_id} was not installed: {' '.join(exc.messages)}")
            return
        self.stdout.write(f"Installed example function {function_id} ({function.type}).")
