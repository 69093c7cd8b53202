"""Compatibility packages that plugin code imports by their upstream names.

`open_webui/` is served as the top-level `open_webui` package to plugins by the
import finder in functions/services/imports.py; nothing here imports Django.
"""
