"""engagehub: a self-hostable hub for message engagement events and consent state."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("engagehub")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
