"""Minimal settings for the floor app: no apps, no middleware, no database."""

SECRET_KEY = "bench-floor-not-secret"  # signs nothing: the floor has no sessions or forms
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "floor.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict = {}
USE_TZ = True
LOGGING_CONFIG = None  # Django's default logging config is not loaded
