"""Flow control towards the browser, for a terminal session.

The browser acknowledges the output bytes it has written to its terminal, and the relay keeps
at most OUTPUT_WINDOW bytes unacknowledged.  While the window is full it stops reading LXD's
socket; TCP then holds the command in the instance.  Daphne's own send never waits (Twisted
queues whatever the client has not read), so without this a `yes` in a slow browser's shell
would grow the dashboard without bound.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .terminal import TerminalRefused

# Output bytes in flight to the browser: enough for full speed on a fast link (the page's
# script acknowledges every 64 KiB), small enough that a stalled browser costs little.
OUTPUT_WINDOW = 1024 * 1024


class OutputWindow:
    """Output sent to the browser and not yet acknowledged, at most `size` bytes: `room()`
    waits while the window is full."""

    def __init__(self, size: int = OUTPUT_WINDOW):
        self.size = size
        self.sent_total = 0
        self.written = 0  # what the browser said it has written to its terminal
        self._room = asyncio.Event()
        self._room.set()

    def sent(self, count: int) -> None:
        self.sent_total += count
        if self.sent_total - self.written >= self.size:
            self._room.clear()

    def acknowledge(self, written: Any) -> None:
        """The browser has written `written` bytes in all; refused if that is not a count of
        bytes sent."""
        if not isinstance(written, int) or isinstance(written, bool):
            raise TerminalRefused("An acknowledgement counts bytes: a whole number.")
        if not self.written <= written <= self.sent_total:
            raise TerminalRefused(f"Acknowledged {written} bytes of {self.sent_total} sent.")
        self.written = written
        if self.sent_total - self.written < self.size:
            self._room.set()

    async def room(self) -> None:
        await self._room.wait()
