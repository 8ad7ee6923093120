"""engagehub: a self-hostable hub for message engagement events and consent state."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("engagehub")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

# Every append, in every process, must drop erased people's events. Storage imports no feature
# module, so privacy registers its screen with storage.events when imported: importing it with
# the package makes that hold whatever a process imports first.
from engagehub.privacy import suppress as _suppress  # noqa: F401
