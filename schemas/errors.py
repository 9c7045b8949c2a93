"""Every exception Chorus raises derives from ChorusError.

This module sits in `schemas`, the one package everything else may import, so the
whole project shares one root exception.
"""

from __future__ import annotations


class ChorusError(Exception):
    """Base of all Chorus errors."""


class DecodeError(ChorusError):
    """A message that is not a valid event for its topic.

    Keeps the raw bytes so the message can go to the dead-letter topic intact.
    """

    def __init__(self, raw: bytes | None, reason: str, *, topic: str | None = None) -> None:
        self.raw = raw
        self.reason = reason
        self.topic = topic
        where = f" on {topic}" if topic else ""
        super().__init__(f"undecodable message{where}: {reason}")
