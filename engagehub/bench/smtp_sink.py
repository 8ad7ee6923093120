"""A counting SMTP server (aiosmtpd) in its own process, for ``engagehub bench broadcast``.

Usage: ``python -m engagehub.bench.smtp_sink PORT``; prints ``ready``, then answers each line
read on stdin with the number of messages (and of distinct Message-IDs) received so far.
"""

from __future__ import annotations

import re
import sys
from typing import Any

_MSGID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class Counter:
    """Counts messages and distinct Message-IDs."""

    def __init__(self) -> None:
        self.count = 0
        self.ids: set[bytes] = set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Count one message."""
        self.count += 1
        found = _MSGID.search(envelope.original_content or b"")
        if found:
            self.ids.add(found.group(1))
        return "250 2.0.0 queued"


def main() -> None:
    """Serve until stdin closes."""
    from aiosmtpd.controller import Controller

    counter = Counter()
    controller = Controller(counter, hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    print("ready", flush=True)
    for _ in sys.stdin:
        print(f"{counter.count} {len(counter.ids)}", flush=True)
    controller.stop()


if __name__ == "__main__":
    main()
