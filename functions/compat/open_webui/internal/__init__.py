"""Open WebUI's `open_webui.internal` package: only `db`, which gives no database."""
