"""Processes that must not outlive the process that started them (issue 21, item 17).

A server killed with ``kill -9`` used to leave its training worker running as an orphan: it
finished the run unobserved, and after a restart the run read "running" with nobody to cancel
it. Now every process a training needs ends with its parent:

* the app's worker process (`mtlrec.training.worker`) dies with the server (SIGKILL): its run
  folder then reads "interrupted" (status.json's owner is gone) and resumes from its last
  checkpoint;
* the torchrun launcher the app starts (``python -m mtlrec train --nproc N``) is told the
  server's pid (``MTLREC_PARENT_PID``); when the server dies it sends SIGHUP to torchrun, which
  passes it to every rank (they end at once: "interrupted", resumable);
* every rank dies with torchrun (``MTLREC_PARENT_PID=parent``), whatever ends torchrun.

How: Linux's ``prctl(PR_SET_PDEATHSIG)`` (through ctypes; the kernel signals the child when the
thread that started it ends) and, as the fallback everywhere, a watchdog thread that notices
``os.getppid()`` change (the orphan is adopted by init or a subreaper) within ``WATCH_S``.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Callable

PARENT_ENV = "MTLREC_PARENT_PID"      # "<pid>": die with that process; "parent": with whoever started us
PR_SET_PDEATHSIG = 1
WATCH_S = 0.5


def parent_death_signal(signum: int) -> bool:
    """Ask the kernel to send ``signum`` to this process when its parent (thread) ends (Linux only).
    True when set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError, TypeError):
        return False


def parent_from_env(env: dict | None = None) -> int | None:
    """The pid this process must die with, from ``MTLREC_PARENT_PID`` (removed from ``env``, by
    default ``os.environ``, so that the processes started from here do not inherit it): a number,
    or ``parent`` for the process that started this one; None when not set or unusable."""
    env = os.environ if env is None else env
    raw = (env.pop(PARENT_ENV, None) or "").strip()
    if raw == "parent":
        return os.getppid()
    try:
        pid = int(raw)
    except ValueError:
        return None
    return pid if pid > 1 else None


def die_with_parent(parent_pid: int | None, *, signum: int = signal.SIGKILL,
                    on_orphan: Callable[[], None] | None = None) -> bool:
    """From now on, end when the process ``parent_pid`` ends.

    The kernel sends ``signum`` (default SIGKILL: the process ends at once) when the parent
    goes, where it can (Linux); a daemon watchdog thread calls ``on_orphan`` (default: send
    ``signum`` to this process) when ``os.getppid()`` is no longer ``parent_pid`` -- also at once
    when the parent was gone before this call. With ``on_orphan`` and a catchable ``signum``,
    install a handler for ``signum`` that does the same (the kernel's signal arrives first).
    False (nothing done) when ``parent_pid`` is None."""
    if not parent_pid or parent_pid <= 1:
        return False
    act = on_orphan or (lambda: os.kill(os.getpid(), signum))
    parent_death_signal(signum)
    fired = threading.Event()

    def orphaned() -> None:
        if not fired.is_set():
            fired.set()
            act()

    def watch() -> None:
        while os.getppid() == parent_pid:
            if fired.wait(WATCH_S):
                return
        orphaned()

    threading.Thread(target=watch, name="mtlrec-lifeline", daemon=True).start()
    return True
