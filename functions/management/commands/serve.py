"""`make run` in one process: migrate, collect static files, the demo admin, the example
functions, then daphne, so a second `make run` pays for one interpreter and one Django
start instead of five."""

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections


class Command(BaseCommand):
    help = "Set the app up (migrate, static files, demo admin, examples) and serve it with daphne."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")

    def handle(self, *args, **options) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        call_command("ensure_demo_admin")
        call_command("install_examples")
        # The setup's connections belong to this thread; requests open their own.
        connections.close_all()
        from daphne.cli import CommandLineInterface

        argv = ["-b", options["host"], "-p", str(options["port"]), "fnplatform.asgi:application"]
        CommandLineInterface().run(argv)
