"""Mirrors open_webui.utils.logger: `stdout_format`, `file_format`, `InterceptHandler`,
`start_logger`, as plugins use them with loguru (`logger.add(sys.stdout,
format=stdout_format)`).

`start_logger` configures the logging of the process it runs in: in fnplatform that
is the plugin's own worker (whose output the server keeps the end of, for
diagnostics), never the server. Where loguru is not installed, it configures the
standard library's root logger the same way instead. Audit log files are not
written (upstream writes them only when its audit logging is switched on).
"""

import json
import logging
import sys
from typing import Any

from ..env import GLOBAL_LOG_LEVEL


def stdout_format(record: Any) -> str:
    """The loguru format of a console line: time, level, where, message, extras as JSON."""
    extra = record["extra"]
    suffix = ""
    if extra:
        extra["extra_json"] = json.dumps(extra, default=str)
        suffix = " - {extra[extra_json]}"
    return (
        "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level: <8}</level> | "
        "<cyan>{name}</cyan>:<cyan>{function}</cyan>:<cyan>{line}</cyan> - "
        "<level>{message}</level>" + suffix + "\n{exception}"
    )


def file_format(record: Any) -> str:
    """The loguru format of an audit line: the record's audit fields as one JSON object."""
    extra = record["extra"]
    fields = ("id", "user", "audit_level", "verb", "request_uri", "source_ip", "user_agent")
    audit = {name: extra.get(name, {} if name == "user" else "") for name in fields}
    audit["timestamp"] = int(record["time"].timestamp())
    audit["response_status_code"] = extra.get("response_status_code", 0)
    audit["extra"] = extra.get("extra", {})
    extra["file_extra"] = json.dumps(audit, default=str)
    return "{extra[file_extra]}\n"


def _loguru():
    try:
        from loguru import logger
    except ImportError:
        return None
    return logger


class InterceptHandler(logging.Handler):
    """A standard-library handler that passes each record on to loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        logger = _loguru()
        if logger is None:
            sys.stderr.write(self.format(record) + "\n")
            return
        try:
            level: Any = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = logging.currentframe(), 2
        while frame is not None and frame.f_code.co_filename == logging.__file__:
            frame, depth = frame.f_back, depth + 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


def start_logger() -> None:
    """Log to stdout at GLOBAL_LOG_LEVEL: loguru with `stdout_format`, and the standard
    library's logging routed through it (or, without loguru, the standard library alone)."""
    logger = _loguru()
    if logger is None:
        logging.basicConfig(stream=sys.stdout, level=GLOBAL_LOG_LEVEL, force=True)
        return
    logger.remove()
    logger.add(
        sys.stdout,
        level=GLOBAL_LOG_LEVEL,
        format=stdout_format,
        filter=lambda record: "auditable" not in record["extra"],
    )
    logging.basicConfig(handlers=[InterceptHandler()], level=GLOBAL_LOG_LEVEL, force=True)
