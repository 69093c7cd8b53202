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
            from functions.workers import sandbox

            # Probe now, so a degraded or refused sandbox is logged when the server starts.
            sandbox.status()
