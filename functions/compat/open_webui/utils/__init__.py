"""Mirrors Open WebUI's `open_webui.utils` package (only the pure helpers plugins use)."""
