"""When a run stops before its epochs end: step and time budgets, and SIGINT / SIGTERM.

SIGINT / SIGTERM (Ctrl-C; SLURM's notice before it kills a job) stop the run at the next step boundary with
a checkpoint of that step (reason ``interrupted``), so a resume loses nothing; a second SIGINT interrupts
at once. Under DDP every rank stops at the same step (a signal may reach only some): the ranks take the
maximum of their stop codes, one tiny all-reduce per step.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

from facesr.train import distributed as dist

__all__ = ["Stops"]

_REASONS = (None, "budget_time", "interrupted")


class Stops:
    """``with Stops(max_steps, max_minutes, message, flag_device) as stops: ... stops.check(step)``."""

    def __init__(self, max_steps: int, max_minutes: float, message: Callable[[str], None],
                 flag_device: Callable[[], object]) -> None:
        self.max_steps, self.max_minutes = max_steps, max_minutes
        self.message, self.flag_device = message, flag_device
        self.signal: str | None = None
        self.t0 = time.monotonic()
        self._previous: dict = {}

    def check(self, step: int) -> str | None:
        """``budget_steps`` | ``budget_time`` | ``interrupted`` | None (go on)."""
        if self.max_steps and step >= self.max_steps:
            return "budget_steps"
        code = 2 if self.signal is not None else int(bool(
            self.max_minutes and (time.monotonic() - self.t0) >= self.max_minutes * 60.0))
        if dist.active():
            code = int(dist.max_value(code, device=self.flag_device()))
        return _REASONS[code]

    def _handler(self, signum, frame) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name
        self.message(f"{self.signal}: saving a checkpoint at the end of this step (Ctrl-C again to abort now)")

    def __enter__(self) -> Stops:
        self.t0 = time.monotonic()
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            self._previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
            for sig in self._previous:
                signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)
        self._previous = {}
