"""Mirrors the parts of Open WebUI's `open_webui.routers` package that plugins call directly.

Only the modules here exist (files, images, memories, models, retrieval, users);
any other router (audio, knowledge...) fails to import with a ModuleNotFoundError
naming it.
"""
