"""Mirrors open_webui.config: the filesystem locations plugins write to."""

from pathlib import Path

from django.conf import settings

DATA_DIR = Path(settings.DATA_DIR)
UPLOAD_DIR = DATA_DIR / "uploads"
CACHE_DIR = DATA_DIR / "cache"
for _folder in (UPLOAD_DIR, CACHE_DIR):
    _folder.mkdir(parents=True, exist_ok=True)
