"""Progress lines for long operations, on stderr so `--json` output stays clean on stdout."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Steps and short notes; a live figure overwrites itself on a terminal."""

    def __init__(
        self, stream: TextIO | None = None, *, quiet: bool = False, log: TextIO | None = None
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.log = log  # a copy of every line, with the time, for after a dropped SSH session
        self._live = False
        self._last_live = 0.0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def step(self, text: str) -> None:
        self._line(f"==> {text}")

    def note(self, text: str) -> None:
        self._line(f"    {text}")

    def warn(self, text: str) -> None:
        self._line(f"    WARNING: {text}")

    def live(self, text: str) -> None:
        """A figure that changes (pressure, seconds left): redrawn on a terminal, else 1 line/s."""
        if self.quiet:
            return
        if self.tty:
            try:
                self.stream.write(f"\r    {text}\033[K")
                self.stream.flush()
            except OSError:
                self.quiet = True
            self._live = True
            return
        now = time.monotonic()
        if now - self._last_live >= 1.0:
            self._last_live = now
            self._line(f"    {text}")

    def _line(self, text: str) -> None:
        if self.log is not None:
            self.log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
            self.log.flush()
        if self.quiet:
            return
        try:
            if self._live:
                self.stream.write("\n")
                self._live = False
            self.stream.write(text + "\n")
            self.stream.flush()
        except OSError:
            # The SSH session went away: the work goes on, the log file keeps the story.
            self.quiet = True
