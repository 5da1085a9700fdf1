"""Logging through structlog on top of the stdlib ``logging`` module.

The library only creates loggers; it never configures output, so it is silent unless the
application (or the CLI, with ``--log-level``/``--log-json``) sets up logging. Loggers are
built with ``structlog.wrap_logger`` rather than ``structlog.configure`` so that importing
udptcp never changes an application's own structlog configuration.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

LOGGER_NAME = "udptcp"
TRACE_LOGGER_NAME = "udptcp.trace"
"""Every segment sent and received, at debug level: off unless asked for (``--log-level trace``)."""

logging.getLogger(LOGGER_NAME).addHandler(logging.NullHandler())

_PROCESSORS: list[Any] = [
    structlog.stdlib.filter_by_level,
    structlog.stdlib.add_log_level,
    structlog.processors.format_exc_info,
    structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
]


def get_logger(name: str = LOGGER_NAME, **context: Any) -> structlog.stdlib.BoundLogger:
    """A logger for udptcp, bound to ``context`` (addresses, connection id, ...)."""
    logger: structlog.stdlib.BoundLogger = structlog.wrap_logger(
        logging.getLogger(name),
        processors=_PROCESSORS,
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    return logger.bind(**context) if context else logger


def debug_enabled(name: str = LOGGER_NAME) -> bool:
    """Whether debug records would be emitted (checked once per connection, not per segment)."""
    return _std_logger(name).isEnabledFor(logging.DEBUG)


@functools.cache
def _std_logger(name: str) -> logging.Logger:
    """``logging.getLogger``, without its lock: a logger, once made, is the same for good, and
    every connection opened asks for two."""
    return logging.getLogger(name)


def configure(
    level: str = "warning", *, json: bool = False, stream: TextIO | None = None, pid: bool = False
) -> None:
    """Send udptcp's log to ``stream`` (standard error by default), as text or JSON lines.

    ``level`` is a logging level name, or "trace": debug plus one record per segment. With
    ``pid`` every record names the process that wrote it (processes sharing a port and a log).
    """
    trace = level.lower() == "trace"
    logging.getLogger(TRACE_LOGGER_NAME).setLevel(logging.DEBUG if trace else logging.INFO)
    numeric = logging.getLevelName("DEBUG" if trace else level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}; use trace, debug, info, warning or error")
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                *([_add_pid] if pid else []),
                renderer,
            ],
        )
    )
    logger = logging.getLogger(LOGGER_NAME)
    for old in [h for h in logger.handlers if not isinstance(h, logging.NullHandler)]:
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(numeric)
    logger.propagate = False


def _add_pid(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event["pid"] = os.getpid()
    return event
