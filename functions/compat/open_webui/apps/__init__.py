"""Placeholder for Open WebUI's pre-0.5 `open_webui.apps` package.

It is empty on purpose: `open_webui.apps.webui.<x>` is aliased to `open_webui.<x>`
by the import finder, which needs this package to exist as the alias' parent.
"""
