"""JSON log lines for every logger in the process (ours, Faust's, aiokafka's), via structlog."""

from __future__ import annotations

import logging

import structlog


def json_handler(json: bool = True) -> logging.Handler:
    """A stdlib handler rendering each record (with its `extra` fields) as one JSON object."""
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    return handler


def configure_logging(level: str = "INFO", json: bool = True) -> logging.Handler:
    """Route the root logger through one JSON handler (idempotent)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_chorus", False):
            root.removeHandler(h)
    handler = json_handler(json)
    handler._chorus = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
