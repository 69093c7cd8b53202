"""ASGI entry point of the floor app: `daphne floor.asgi:application`, run from bench/."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "floor.settings")
application = get_asgi_application()
