"""Mirrors open_webui.utils.mcp (its `client` module)."""
