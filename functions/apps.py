from django.apps import AppConfig


class FunctionsConfig(AppConfig):
    name = "functions"
    verbose_name = "Functions"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.backends.signals import connection_created

        from fnplatform.datafiles import on_connection_created

        connection_created.connect(on_connection_created, dispatch_uid="fnplatform-0600")
        if not getattr(settings, "FNPLATFORM_WORKER", False):
            from functions.services import environments
            from functions.services.functions import functions_environment_installed

            environments.installed.connect(
                functions_environment_installed, dispatch_uid="functions-environment-installed"
            )
            from functions.workers import sandbox

            # Probe now, so a degraded or refused sandbox is logged when the server starts.
            sandbox.status()
