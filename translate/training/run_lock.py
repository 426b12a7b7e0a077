"""One training per run folder, and no run replaced by accident.

``RunLock``: ``checkpoints_dir/name/train.lock`` holds the holder's PID, host,
start time and command line, and an exclusive ``flock`` on it for as long as the
training lives.  The kernel drops the flock when the process ends, however it
ends (SIGKILL, a crash, a power cut of the process), so a lock left behind is
recognised as stale without guessing from PIDs, and taken over with a note.
A lock file written on another host is not taken over: whether that process
still runs cannot be checked from here (and flock across NFS clients is not
reliable everywhere), so the message says which file to delete.

``check_previous_run`` / ``start_over``: a fresh training (no --continue_train)
on a folder that already holds checkpoints is refused, naming --continue_train
and --start_over.  We refuse rather than move the old run aside because moving
is silent: a forgotten --continue_train would start from scratch while the old
run sits under another name (and, with multi-GB checkpoints, fills the disk
unnoticed).  A refusal costs one re-typed command and loses nothing.
--start_over removes the earlier run's checkpoints and logs (so no ckpt_N is
left that no longer matches train_config.json) and trains afresh.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: fall back to the PID check alone
    fcntl = None

LOCK_NAME = "train.lock"
# What a training writes into its run folder; --start_over removes exactly these.
# (wandb_run_id.txt: so that the new run is a new W&B run; W&B's own local wandb/ folder is kept,
# it may hold data not yet synced.)
RUN_FILES = ("loss_log.txt", "loss_log.jsonl", "train_opt.txt", "train_config.json", "wandb_run_id.txt")
RUN_FOLDERS = ("web", "tensorboard")


class RunFolderError(RuntimeError):
    """The run folder cannot be used as asked; the message says what to do."""


class RunInUse(RunFolderError):
    pass


class RunExists(RunFolderError):
    pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # alive, someone else's
        return True
    return True


def _describe(holder: dict) -> str:
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) else "?"
    return f"PID {holder.get('pid', '?')} on host {holder.get('host', '?')}, started {when}"


class RunLock:
    """``with RunLock(run_dir) as lock:`` (or acquire()/release()); ``lock.note`` says if a stale one was taken."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.note: str | None = None
        self._fd: int | None = None
        self._owner_pid: int | None = None

    def acquire(self) -> "RunLock":
        try:
            return self._acquire()
        except OSError as err:   # a read-only or missing place, a file where the folder should be
            raise RunFolderError(f"cannot create the run lock {self.path}: {err.strerror or err}. "
                                 f"Check --checkpoints_dir and --name.") from None

    def _acquire(self) -> "RunLock":
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(10):   # retried only when the file was swapped under us
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if self._try_lock(fd):
                    same_file = os.path.exists(self.path) and os.stat(self.path).st_ino == os.fstat(fd).st_ino
                    if same_file:   # not a file its holder removed while we waited
                        self._claim(fd)
                        return self
                    os.close(fd)
                    continue
                raise RunInUse(self._in_use_message(_read(fd)))
            except BaseException:
                if self._fd != fd:
                    with _suppress_oserror():
                        os.close(fd)
                raise
        raise RunInUse(f"could not lock {self.path}: it keeps being replaced by another process")

    def _try_lock(self, fd: int) -> bool:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False
        holder = _read(fd)   # no flock: trust a live PID on this host
        return not (holder and holder.get("host") == socket.gethostname() and _pid_alive(int(holder.get("pid", 0)))
                    and holder.get("pid") != os.getpid())

    def _in_use_message(self, holder: dict) -> str:
        who = _describe(holder) if holder else "another process"
        return (f"run folder {self.run_dir} is in use by another training ({who}; see {self.path}). "
                f"Wait for it to finish, stop it, or train under another --name.")

    def _claim(self, fd: int) -> None:
        previous = _read(fd)
        here = socket.gethostname()
        if previous and previous.get("host") not in (None, here):
            raise RunInUse(f"{self.path} was written by a training on another host ({_describe(previous)}); "
                           f"from {here} it cannot be checked whether it still runs. If it has ended, "
                           f"delete {self.path} and start again.")
        if previous:
            self.note = (f"note: took over the stale lock {self.path} of {_describe(previous)}, "
                         f"which no longer runs")
        info = {"pid": os.getpid(), "host": here, "started": time.time(), "command": sys.argv}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        os.fsync(fd)
        self._fd, self._owner_pid = fd, os.getpid()
        # Forked children (DataLoader workers) share the open file and with it the flock:
        # they close their copy, so the lock ends with this process, not with its last worker.
        os.register_at_fork(after_in_child=self._close_in_child)

    def _close_in_child(self) -> None:
        if self._fd is not None:
            with _suppress_oserror():
                os.close(self._fd)   # close only: LOCK_UN would unlock the parent too
            self._fd = None

    def release(self) -> None:
        if self._fd is None or self._owner_pid != os.getpid():
            return
        with _suppress_oserror():
            os.unlink(self.path)   # before the unlock: a waiter re-checks the inode (acquire)
        with _suppress_oserror():
            os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class _suppress_oserror:
    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        return kind is not None and issubclass(kind, OSError)


def _read(fd: int) -> dict:
    raw = b""
    try:
        raw = os.pread(fd, 65536, 0)
        holder = json.loads(raw.decode() or "{}")
    except (OSError, ValueError):
        return {"pid": "?", "host": None} if raw else {}
    return holder if isinstance(holder, dict) else {}


# ---- an earlier run in the folder ----------------------------------------
def previous_checkpoints(run_dir: str | Path) -> list[Path]:
    """Our ckpt_* folders and classic *_net_*.pth files in ``run_dir``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [p for p in run_dir.glob("ckpt_*") if p.is_dir()]
    found += [p for p in run_dir.glob("*_net_*.pth") if p.is_file()]
    return sorted(found)


def check_previous_run(run_dir: str | Path, state_reader=None) -> None:
    """Refuse to start a fresh training over checkpoints that are already there."""
    run_dir = Path(run_dir)
    found = previous_checkpoints(run_dir)
    if not found:
        return
    what = f"{len(found)} checkpoint file(s)/folder(s)"
    latest = run_dir / "ckpt_latest"
    if state_reader is not None and latest.is_dir():
        try:
            state = state_reader(latest) or {}
            what = f"ckpt_latest at epoch {state['epoch']}, iteration {state['total_iters']}; {what}"
        except Exception:  # noqa: BLE001 - only for the message
            pass
    raise RunExists(f"{run_dir} already holds a training run ({what}). Add --continue_train to resume it, "
                    f"--start_over to delete its checkpoints and logs and train from scratch, "
                    f"or choose another --name.")


def start_over(run_dir: str | Path) -> list[str]:
    """Remove an earlier run's checkpoints and logs (--start_over); returns what was removed."""
    run_dir = Path(run_dir)
    removed = []
    targets = previous_checkpoints(run_dir) + [run_dir / n for n in RUN_FILES + RUN_FOLDERS]
    targets += list(run_dir.glob(".ckpt_*")) if run_dir.is_dir() else []   # staging left by a crash
    for path in targets:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(path.name)
    return removed
