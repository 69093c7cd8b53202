from django.apps import AppConfig


class ValvesConfig(AppConfig):
    name = "valves"
    verbose_name = "Valves"
