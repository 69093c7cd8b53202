"""Open WebUI's `open_webui.models` package: host-data tables, backed by fnplatform."""
