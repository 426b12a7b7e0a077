"""Ctrl-C (SIGINT) and SIGTERM: stop at a safe point, say what was kept, exit 128 + signal.

A terminal's Ctrl-C reaches the whole foreground process group, and ``timeout``,
SLURM and Kubernetes send SIGTERM to the group as well, so the DataLoader
workers get the signal too.  They ignore it (datasets.loader.ignore_stop_signals,
the loaders' worker_init_fn) and are shut down by the main process, which decides when to stop:

* ``deferred()``: the handler only records the signal; the loop checks
  ``stop.signum`` at its safe points (between training steps, between batches)
  and winds down there.  Further signals do not interrupt that: they print a
  note and are otherwise ignored, so a save in progress always completes.
* ``raising()``: the first signal raises ``Interrupted`` where the program is, for
  the phases where nothing is half-done (loading a model, tracing an export whose
  file is written under a temporary name); repeats are ignored while it unwinds.
* ``exit_during_imports()`` and ``script_main()``: the entry points' first and last
  lines, so that no phase of a script (importing torch, shutting down) is left to
  Python's default KeyboardInterrupt traceback.

The handlers write with ``os.write``: a handler that used ``print`` could land
in the middle of another ``print`` to the same stream and fail (reentrant call).
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A stop signal arrived; not an Exception, so ``except Exception`` does not swallow it.

    ``reported``: the code that raised it has already said what was kept.
    """

    def __init__(self, signum: int, reported: bool = False):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.reported = signum, reported

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum)


def exit_code(signum: int) -> int:
    """What a shell reports for a process ended by ``signum``: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + int(signum)


def say(text: str) -> None:
    """Write a line to stderr from a signal handler (unbuffered, never reentrant)."""
    with contextlib.suppress(OSError):
        os.write(sys.stderr.fileno(), (text.rstrip("\n") + "\n").encode(errors="replace"))


@contextlib.contextmanager
def _handlers(handler):
    if threading.current_thread() is not threading.main_thread():
        yield   # signal handlers can only be set in the main thread; leave the caller's ones
        return
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class _RaiseOnce:
    """A handler that raises ``Interrupted`` for the first signal only.

    Later signals (Ctrl-C pressed again) are ignored while the first one unwinds:
    raised again inside an ``except`` or ``finally`` on the way out, they would
    escape it as a traceback.
    """

    def __init__(self):
        self.quiet = False

    def __call__(self, signum, _frame):
        if self.quiet:
            return
        self.quiet = True
        raise Interrupted(signum)


@contextlib.contextmanager
def raising():
    """Within the block, the first SIGINT or SIGTERM raises ``Interrupted``."""
    with _handlers(_RaiseOnce()):
        yield


class StopRequest:
    """The signal that asked to stop (``signum``, None until one arrives)."""

    def __init__(self, first_note: str, again_note: str, quiet: bool = False):
        self.signum: int | None = None
        self.first_note, self.again_note, self.quiet = first_note, again_note, quiet

    def _handler(self, signum, _frame) -> None:
        name = signal.Signals(signum).name
        if self.signum is None:
            self.signum = signum
            note = self.first_note
        else:
            note = self.again_note
        if not self.quiet:
            say(f"\nreceived {name}: {note}")

    @property
    def name(self) -> str | None:
        return signal.Signals(self.signum).name if self.signum else None


@contextlib.contextmanager
def deferred(first_note: str, again_note: str, quiet: bool = False):
    """Within the block, stop signals are recorded in the yielded ``StopRequest``."""
    request = StopRequest(first_note, again_note, quiet)
    with _handlers(request._handler):
        yield request


def exit_during_imports() -> None:
    """For a script's first lines: a stop signal while torch & co. import ends it at once.

    Nothing has been done yet, so there is nothing to save or report; script_main()
    replaces this handler once main() is reached.
    """
    def handler(signum, _frame):
        say(f"\n{signal.Signals(signum).name} while starting up; nothing was done.")
        os._exit(exit_code(signum))
    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)


def script_main(main, prog: str = "", nothing_done: str = "") -> int:
    """Run an entry point's ``main()`` as a script: returns the exit code for ``sys.exit``.

    A stop signal that main() does not handle itself (its own handlers are restored on
    the way out, to this one) ends it with 128 + signal, a line "PROG: stopped by
    SIGINT; NOTHING_DONE" and no traceback.  Once main()
    has returned, signals are ignored: the interpreter's shutdown (worker joins, atexit
    hooks) must not turn a clean exit into a KeyboardInterrupt traceback.
    """
    handler = _RaiseOnce()
    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)
    try:
        code = main()
        handler.quiet = True   # from here on nothing may raise (a signal just before: caught below)
    except Interrupted as stop:
        if prog and not getattr(stop, "reported", False):   # reported: main() said what it kept
            say(f"\n{prog}: stopped by {stop.name}" + (f"; {nothing_done}" if nothing_done else ""))
        code = stop.exit_code
    finally:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
    return code
