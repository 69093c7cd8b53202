"""Mirrors the parts of open_webui.main that plugins import."""

from .utils.chat import generate_chat_completion, generate_chat_completions

__all__ = ["generate_chat_completion", "generate_chat_completions"]
