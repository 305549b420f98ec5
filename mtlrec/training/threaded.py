"""What every background job of the library shares: a thread, a status under a lock, and the end states.

`mtlrec.training.jobs.TrainingJob` (a training run) and `mtlrec.teaching.lab.LabJob` (a lab experiment)
set ``_thread``, ``_lock`` and ``_status`` and inherit waiting and the status from here.
"""
from __future__ import annotations

TERMINAL = ("finished", "cancelled", "failed")


class ThreadedJob:
    """A job run by one thread (``self._thread``, None until started) with ``self._status`` guarded by
    ``self._lock``."""

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has ended (or never started)."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def status(self) -> str:
        with self._lock:
            return self._status

    @property
    def done(self) -> bool:
        return self.status in TERMINAL
