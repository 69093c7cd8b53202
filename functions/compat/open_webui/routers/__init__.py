"""Mirrors the parts of Open WebUI's `open_webui.routers` package that plugins call directly.

Only the modules here exist; any other router (files, images, retrieval...) fails
to import with a ModuleNotFoundError naming it.
"""
