"""Fault points and Ctrl-C handling of a generate run (the tests use these to crash and pause runs)."""
from __future__ import annotations

import errno
import os
import signal
import threading
import time
from contextlib import contextmanager
from typing import Iterator

FAULT_ENV = "SYNTHTEXT_INDUSTRIAL_FAULT"


def fault(point: str) -> None:
    """Test hook: `SYNTHTEXT_INDUSTRIAL_FAULT=ACTION:POINT[:FILE]` fails or pauses a run at POINT.

    ACTION `kill` sends SIGKILL to this process, `enospc` raises a disk-full OSError. With
    FILE only the first process to create that file is hit (for worker deaths that a retry
    must survive). ACTION `pause` (FILE required) creates FILE and waits there until FILE is
    removed; Ctrl-C still stops the run. A test that interrupts a run waits for FILE, and so
    knows where the run is, and that it has not finished, however loaded the machine is.
    Points: render (in a render worker), rendering (local engine, once: the first shard is
    open and its first sample asked for; render workers are starting up), record (before a
    record is stored), finish-crops / finish-images (before that shard's rename), shard-done
    (after the renames, before the manifest records the shard), uploaded (OUT a URL: after
    the shard's objects are uploaded, before the manifest records it), recorded/shard-NNNNN
    (once the manifest lists that shard). Unset, it does nothing.
    """
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    action, where, *once = spec.split(":", 2)
    if where != point:
        return
    if action == "pause" and not once:
        raise ValueError(f"{FAULT_ENV}={spec}: pause needs a FILE (pause:POINT:FILE)")
    if once:
        try:
            os.close(os.open(once[0], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    elif action == "pause":
        while os.path.exists(once[0]):
            stop_point()
            time.sleep(0.01)


_STOP = threading.Event()  # set by the first Ctrl-C during a local run


def stop_point() -> None:
    """Where a deferred Ctrl-C takes effect: between records, never inside multiprocessing's own code."""
    if _STOP.is_set():
        raise KeyboardInterrupt


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """The first Ctrl-C stops the run at the next record; a second one at once.

    A KeyboardInterrupt raised anywhere (e.g. while the pool starts a worker)
    leaves half-started workers that print tracebacks; this keeps it clean.
    Only when this is the main thread and SIGINT has Python's default handler.
    """
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return

    def first(signum, frame) -> None:
        _STOP.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    _STOP.clear()
    signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _STOP.clear()
