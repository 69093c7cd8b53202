"""Settings for plugin worker processes: enough Django to import the compatibility
layer, and nothing that reaches the server's data.

No database (the dummy backend raises on any query), no channel layer, and a
throwaway secret key: host data reaches workers only through the per-call host
channel (functions.compat.open_webui._host).
"""

import os
import secrets
from pathlib import Path

from fnplatform import PROJECT_APPS

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("FNPLATFORM_DATA_DIR", str(BASE_DIR / "var"))).resolve()
SECRET_KEY = secrets.token_urlsafe(32)  # never the server's
DEBUG = False
FNPLATFORM_WORKER = True

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    *PROJECT_APPS,
]
DATABASES = {"default": {"ENGINE": "django.db.backends.dummy"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
FUNCTIONS_SOURCE_DIR = DATA_DIR / "plugin_sources"
# Inside a worker, hooks run on the worker's own threads; no executor is used.
