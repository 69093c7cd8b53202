"""Mirrors open_webui.storage: where uploaded file bytes live (see provider)."""
