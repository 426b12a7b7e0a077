"""Live display in a Visdom server that never blocks or crashes training.

The training thread only snapshots its data (images are copied to CPU
float32) and appends a job to a bounded queue; when the queue is full the
oldest pending job is dropped.  A new loss or text job replaces a pending one
of its kind (the loss history itself is kept apart, so no point is lost).  One daemon thread owns the visdom client and
does all the encoding and sending.  When the server cannot be reached, at
start or later, a single ``VisdomUnavailableWarning`` is issued for the whole
run and the thread reconnects with exponential back-off (capped).

Windows, as in the classic code: ``display_id`` holds the loss plot,
``display_id + 1`` the labelled image grid, ``display_id + 2`` the text
(options and progress).
"""
from __future__ import annotations

import html
import logging
import threading
import time
import warnings
from collections import deque
from urllib.parse import urlparse

import numpy as np
import torch

from .images import labelled_grid, tensor_to_image

log = logging.getLogger(__name__)


class VisdomUnavailableWarning(RuntimeWarning):
    """The Visdom server could not be reached; training goes on without it."""


class _QuietVisdomFilter(logging.Filter):
    """Drops the visdom client's chatter about sessions and the missing socket."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Without the incoming socket")
                    or message.startswith("Setting up a new session"))


def _make_client(server: str, port: int, env: str, timeout: float):
    import requests  # noqa: F401  (visdom's transport; imported here to keep import time low)
    import visdom

    host = urlparse(server if "://" in server else f"http://{server}").hostname or ""
    local = host in ("localhost", "::1") or host.startswith("127.")

    class _Client(visdom.Visdom):
        def _handle_post(self, url, data=None):  # the stock client waits forever
            session = self.session
            session.trust_env = not local   # no HTTP proxy for a server on this machine
            response = session.post(url, data=data or {}, timeout=timeout)
            return response.text

    visdom_logger = logging.getLogger("visdom")
    if not any(isinstance(f, _QuietVisdomFilter) for f in visdom_logger.filters):
        visdom_logger.addFilter(_QuietVisdomFilter())
    return _Client(server=server, port=port, env=env, raise_exceptions=True,
                   use_incoming_socket=False)


class VisdomDisplay:
    def __init__(
        self,
        server: str = "http://localhost",
        port: int = 8097,
        env: str = "main",
        ncols: int = 4,
        winsize: int = 256,
        display_id: int = 1,
        name: str = "experiment",
        *,
        queue_size: int = 8,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
        request_timeout: float = 10.0,
    ):
        self.server, self.port, self.env = server, int(port), env
        self.ncols, self.winsize, self.name = int(ncols), int(winsize), name
        self.win_losses = str(display_id)
        self.win_images = str(display_id + 1)
        self.win_text = str(display_id + 2)
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self.request_timeout = request_timeout
        self.dropped = 0          # jobs pushed out of the full queue
        self.sent = 0             # jobs delivered
        self.connected = False
        self._pending: deque = deque(maxlen=max(1, queue_size))
        self._cond = threading.Condition()
        self._stopping = False
        self._warned = False
        self._skip_logged = False
        self._history: list[tuple[float, dict[str, float]]] = []
        self._history_lock = threading.Lock()
        self._metrics: dict[str, list[tuple[float, float]]] = {}   # validation metric -> points
        self._thread = threading.Thread(target=self._run, name="visdom-display", daemon=True)
        self._thread.start()

    # ----------------------------------------------------------- training thread
    def _put(self, job: tuple) -> None:
        with self._cond:
            if self._stopping:
                return
            if job[0] in ("losses", "text"):   # the newest supersedes a pending one in place
                for index, pending in enumerate(self._pending):
                    if pending[0] == job[0]:
                        self._pending[index] = job
                        return
            if len(self._pending) == self._pending.maxlen:
                self.dropped += 1
            self._pending.append(job)   # a full deque drops its oldest item
            self._cond.notify()

    def show_visuals(self, visuals: dict[str, torch.Tensor]) -> None:
        """Show ``visuals`` as one grid, ``ncols`` per row, each picture under its label."""
        snapshot = []
        for label, tensor in visuals.items():
            tensor = torch.as_tensor(tensor).detach()
            if tensor.dim() == 4:
                tensor = tensor[0]
            snapshot.append((str(label), tensor.to("cpu", torch.float32, copy=True)))
        if snapshot:
            self._put(("visuals", snapshot))

    def plot_losses(self, x_epoch: float, losses: dict[str, float]) -> None:
        """Add a point per loss at the fractional epoch ``x_epoch``; the whole plot is re-sent."""
        point = {str(k): float(v) for k, v in losses.items()}
        with self._history_lock:
            self._history.append((float(x_epoch), point))
        self._put(("losses", None))

    def plot_metric(self, name: str, iteration: int, value: float) -> None:
        """Add a validation point to the metric's own window (the whole series is re-sent)."""
        with self._history_lock:
            self._metrics.setdefault(str(name), []).append((float(iteration), float(value)))
        self._put(("metric", str(name)))

    def show_text(self, text: str) -> None:
        """Show plain ``text`` (escaped, pre-formatted) in the text window."""
        self._put(("text", str(text)))

    def close(self, timeout: float = 5.0) -> None:
        """Send what is pending (while the server answers, up to ``timeout`` s), then stop."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)

    # ----------------------------------------------------------- sender thread
    def _warn_once(self, reason: str) -> None:
        if self._warned:
            log.debug("visdom still unreachable: %s", reason)
            return
        self._warned = True
        try:
            warnings.warn(
                f"Visdom server {self.server}:{self.port} is not reachable ({reason}). Training "
                "goes on; the display reconnects in the background. Start a server with "
                f"`python -m translate.viewer --port {self.port}` or pass --display_id 0.",
                VisdomUnavailableWarning, stacklevel=2)
        except Exception:  # warnings turned into errors (-W error) must not kill this thread
            log.warning("Visdom server %s:%s is not reachable (%s)", self.server, self.port, reason)

    def _run(self) -> None:
        client, delay, retry_at = None, self.min_backoff, 0.0
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending:
                    return
                if client is None and time.monotonic() < retry_at:
                    if self._stopping:
                        return  # closing while the server is away: give up the rest
                    self._cond.wait(retry_at - time.monotonic())
                    continue
                job = self._pending.popleft()
                if job[0] == "losses" and any(j[0] == "losses" for j in self._pending):
                    continue  # a later job re-sends the same (longer) history
            try:
                if client is None:
                    client = _make_client(self.server, self.port, self.env, self.request_timeout)
                    self.connected, delay = True, self.min_backoff
                self._send(client, job)
                self.sent += 1
            except (ConnectionError, OSError) as exc:
                client, self.connected = None, False
                self._warn_once(str(exc) or type(exc).__name__)
                retry_at = time.monotonic() + delay
                delay = min(delay * 2, self.max_backoff)
                with self._cond:
                    if len(self._pending) < self._pending.maxlen:
                        self._pending.appendleft(job)
            except Exception as exc:  # a bad job must not stop the display
                level = logging.DEBUG if self._skip_logged else logging.WARNING
                self._skip_logged = True
                log.log(level, "visdom display skipped a %s update: %r", job[0], exc)

    def _send(self, client, job: tuple) -> None:
        kind, payload = job
        if kind == "visuals":
            labels = [label for label, _ in payload]
            pictures = [tensor_to_image(t) for _, t in payload]
            grid = labelled_grid(pictures, labels, self.ncols, tile_height=self.winsize)
            client.image(grid.transpose(2, 0, 1), win=self.win_images,
                         opts={"title": f"{self.name} images"})
        elif kind == "losses":
            with self._history_lock:
                history = list(self._history)
            names: list[str] = []
            for _, losses in history:
                names.extend(n for n in losses if n not in names)
            if not names:
                return
            xs = np.array([x for x, _ in history], dtype=np.float64)
            ys = np.array([[losses.get(n, np.nan) for n in names] for _, losses in history],
                          dtype=np.float64)
            ys[~np.isfinite(ys)] = np.nan   # sent as null: a gap in the line
            client.line(X=xs, Y=ys, win=self.win_losses,
                        opts={"title": f"{self.name} loss over time", "legend": names,
                              "xlabel": "epoch", "ylabel": "loss"})
        elif kind == "metric":
            with self._history_lock:
                points = list(self._metrics.get(payload, []))
            client.line(X=np.array([p[0] for p in points]), Y=np.array([p[1] for p in points]),
                        win=f"{self.win_losses}_metric_{payload}",
                        opts={"title": f"{self.name} {payload}", "xlabel": "iteration", "ylabel": payload})
        elif kind == "text":
            body = f"<pre style='margin:0'>{html.escape(payload)}</pre>"
            client.text(body, win=self.win_text,
                        opts={"title": f"{self.name} status", "width": 560, "height": 320})
