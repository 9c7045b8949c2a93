"""Running one processor: `chorus worker NAME` imports processors.NAME.app and runs its Faust app."""

from __future__ import annotations

import importlib
import re

import faust
from faust.worker import Worker

from .errors import UnknownProcessor

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def load_app(name: str) -> faust.App:
    """The `app` of processors.<name>.app (so processors written elsewhere plug in by name)."""
    if not _NAME.match(name):
        raise UnknownProcessor(f"not a processor name: {name!r}")
    try:
        module = importlib.import_module(f"processors.{name}.app")
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == f"processors.{name}" or exc.name.startswith(f"processors.{name}.app")):
            raise UnknownProcessor(f"no processor {name!r} (no module processors.{name}.app)") from exc
        raise
    app = getattr(module, "app", None)
    if not isinstance(app, faust.App):
        raise UnknownProcessor(f"processors.{name}.app has no Faust `app`")
    return app


def run_worker(app: faust.App, loglevel: str = "INFO") -> None:
    """Run the app until SIGTERM/SIGINT (Faust's worker stops it gracefully); does not return."""
    Worker(app, loglevel=loglevel, redirect_stdouts=False).execute_from_commandline()
