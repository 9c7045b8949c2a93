"""A live status line on stderr: rewritten in place on a terminal, a line every few seconds otherwise."""

from __future__ import annotations

import sys
import time

import click

NON_TTY_EVERY_S = 5.0


class StatusLine:
    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._last = 0.0
        self._shown = False

    def show(self, line: str, *, final: bool = False) -> None:
        if self.tty:
            click.echo("\r" + line[:200] + "\x1b[K", nl=False, err=True)
            self._shown = True
        elif final or time.monotonic() - self._last >= NON_TTY_EVERY_S:
            self._last = time.monotonic()
            click.echo(line, err=True)

    def end(self) -> None:
        """Leave the line in place before other output follows."""
        if self._shown:
            click.echo("", err=True)
            self._shown = False
