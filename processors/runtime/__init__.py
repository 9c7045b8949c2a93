"""What all four processors share: settings, app factory, Redis state store, metrics, dead letters."""

from .settings import Settings

__all__ = ["Settings"]
