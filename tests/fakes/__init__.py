"""Local stand-ins for outside services the tests cannot reach (Gemini). Real HTTP, real SDKs."""

from .gemini_server import FakeGemini, Reply

__all__ = ["FakeGemini", "Reply"]
