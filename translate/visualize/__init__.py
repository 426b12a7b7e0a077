"""What a person sees of a training run: logs, an HTML page and a live Visdom display.

The trainer talks only to ``TrainingDisplay``:

* ``loss_log.txt`` / ``loss_log.jsonl`` in the run folder, always;
* ``web/index.html`` (loss plot and saved pictures) unless ``no_html``;
* a Visdom display when ``display_id > 0`` (it never blocks or stops training;
  start a server with ``python -m translate.viewer``);
* TensorBoard event files with ``use_tensorboard`` and a W&B run with ``use_wandb``
  (tensorboard_log.py, wandb_log.py), each independent of Visdom.

On processes other than the main one (``enabled=False``) every method does nothing.
"""
from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from .html import TrainingPage, write_results_page
from translate.files import write_text as atomic_write_text   # the one atomic writer

from .images import save_image, tensor_to_image
from .loss_log import LossLog, read_jsonl, write_metrics
from .server import free_port, start_local_server, wait_until_up
from .visdom_display import VisdomDisplay, VisdomUnavailableWarning

__all__ = [
    "TrainingDisplay", "TrainingPage", "write_results_page", "LossLog", "read_jsonl",
    "VisdomDisplay", "VisdomUnavailableWarning", "tensor_to_image", "save_image",
    "atomic_write_text", "start_local_server", "wait_until_up", "free_port", "format_duration",
]


def format_duration(seconds: float | None) -> str:
    """``3725 -> '1:02:05'``; None or a negative value -> 'unknown'."""
    if seconds is None or seconds < 0 or seconds != seconds:
        return "unknown"
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days}d {clock}" if days else clock


class TrainingDisplay:
    def __init__(self, display_cfg, run_dir: Path, name: str, options_text: str, enabled: bool = True,
                 start_iters: int = 0, config: dict | None = None):
        """``display_cfg`` is an options.config.DisplayConfig; ``run_dir`` is checkpoints/NAME.

        ``start_iters`` is where a resumed run goes on from (TensorBoard and W&B continue
        their curves there); ``config`` is the resolved config (TrainConfig.to_dict()).
        """
        self.enabled = bool(enabled)
        self.cfg = display_cfg
        self.name = name
        self.options_text = options_text
        self.log: LossLog | None = None
        self.page: TrainingPage | None = None
        self.visdom: VisdomDisplay | None = None
        self.history: list[tuple[float, dict[str, float]]] = []
        self.sinks: list = []    # TensorBoard, W&B: fed every loss, picture and metric by step
        self.metric_history: list[tuple[float, dict[str, float]]] = []   # (total_iters, metrics)
        if not self.enabled:
            return
        self.run_dir = Path(run_dir)
        self.log = LossLog(self.run_dir)
        if not display_cfg.no_html:
            self.page = TrainingPage(self.run_dir / "web", f"Experiment name = {name}",
                                     winsize=display_cfg.display_winsize)
            self.page.render()
        if display_cfg.display_id > 0:
            self.visdom = VisdomDisplay(
                server=display_cfg.display_server, port=display_cfg.display_port,
                env=display_cfg.display_env, ncols=display_cfg.display_ncols,
                winsize=display_cfg.display_winsize, display_id=display_cfg.display_id, name=name)
            self.visdom.show_text(options_text)
        # Not under display_id: turning Visdom off must not turn these off (classic #1616).
        try:
            if display_cfg.use_tensorboard:
                from .tensorboard_log import TensorBoardLog
                self.sinks.append(TensorBoardLog(self.run_dir / "tensorboard", start_iters=start_iters,
                                                 options_text=options_text, config=config,
                                                 ncols=display_cfg.display_ncols))
            if display_cfg.use_wandb:
                from .wandb_log import WandbLog
                self.sinks.append(WandbLog(self.run_dir, project=display_cfg.wandb_project_name, name=name,
                                           start_iters=start_iters, config=config))
        except BaseException:
            self.close()   # no writer thread left behind when W&B cannot start
            raise

    def restore_history(self, until: float) -> int:
        """Put the losses a resumed run logged up to fractional epoch ``until`` back on the plot.

        Without it the page of a resumed run would plot only the new steps. Steps
        logged after the checkpoint (before a crash) are left out, since training
        repeats them; where the log goes back in time (a resume, or a new run under
        the same name) the later records replace the ones from that point on.
        Returns how many points were restored.
        """
        if not self.enabled or not self.log.jsonl_path.exists():
            return 0
        try:
            records = read_jsonl(self.log.jsonl_path)
        except (OSError, ValueError) as err:
            print(f"warning: the loss plot starts empty: cannot read {self.log.jsonl_path} ({err})")
            return 0
        points: list[tuple[float, dict[str, float]]] = []
        for record in records:
            x, losses = (record.get("frac_epoch"), record.get("losses")) if isinstance(record, dict) else (0, 0)
            if not isinstance(x, (int, float)) or not isinstance(losses, dict):
                continue
            while points and points[-1][0] >= x:    # points stay sorted: drop what this record replaces
                points.pop()
            points.append((float(x), {k: float(v) for k, v in losses.items() if isinstance(v, (int, float))}))
        restored = [p for p in points if p[0] <= until + 1e-9]
        self.history = restored + self.history
        if self.page is not None:
            self.page.update_losses(self.history)
        return len(restored)

    def on_visuals(self, visuals: dict[str, torch.Tensor], epoch: int, iteration: int, save_html: bool) -> None:
        """Show the current pictures in Visdom; with ``save_html`` also save them to the page.

        ``iteration`` is total_iters, the step of TensorBoard and W&B.
        """
        if not self.enabled or not visuals:
            return
        for sink in self.sinks:
            sink.on_visuals(iteration, visuals)
        if self.visdom is not None:
            self.visdom.show_visuals(visuals)
        if save_html and self.page is not None:
            self.page.add_visuals(epoch, iteration, visuals)

    def on_losses(
        self,
        epoch: int,
        iters_in_epoch: int,
        frac_epoch: float,
        losses: dict[str, float],
        t_comp: float,
        t_data: float,
        images_per_s: float,
        time_left_s: float | None,
        total_iters: int | None = None,
        learning_rates: dict[str, float] | None = None,
    ) -> None:
        """Log one step (text + JSON lines, printed too), plot it in Visdom and on the page.

        ``total_iters`` (iterations done; default: the count of logged steps) is the step of
        TensorBoard and W&B; ``learning_rates`` ({"G": ..., "D": ...}) go there too.
        """
        if not self.enabled:
            return
        losses = {str(k): float(v) for k, v in losses.items()}
        step = len(self.history) + 1 if total_iters is None else int(total_iters)
        line = self.log.write(epoch, iters_in_epoch, losses, t_comp, t_data, extra={
            "frac_epoch": float(frac_epoch), "images_per_s": float(images_per_s),
            "time_left_s": None if time_left_s is None else float(time_left_s), "total_iters": step})
        tqdm.write(line)   # prints above a running progress bar instead of through it
        self.history.append((float(frac_epoch), losses))
        for sink in self.sinks:
            sink.on_losses(step, losses, frac_epoch=float(frac_epoch), images_per_s=float(images_per_s),
                           learning_rates=learning_rates)
        if self.visdom is not None:
            self.visdom.plot_losses(frac_epoch, losses)
            progress = (f"epoch {epoch}, iteration {iters_in_epoch}, {images_per_s:.1f} images/s, "
                        f"time left {format_duration(time_left_s)}")
            self.visdom.show_text(f"{progress}\n\n{self.options_text}")
        if self.page is not None:
            self.page.update_losses(self.history)

    def on_metrics(self, epoch: int, total_iters: int, metrics: dict[str, float]) -> None:
        """Log one validation (text + JSON lines, printed), plot it on the page, in Visdom,
        TensorBoard and W&B."""
        if not self.enabled:
            return
        metrics = {str(k): float(v) for k, v in metrics.items()}
        tqdm.write(write_metrics(self.log, epoch, total_iters, metrics))
        self.metric_history.append((float(total_iters), metrics))
        if self.visdom is not None:
            for name, value in metrics.items():
                self.visdom.plot_metric(name, total_iters, value)
        if self.page is not None:
            self.page.update_metrics(self.metric_history)
        for sink in self.sinks:
            sink.on_metrics(epoch, total_iters, metrics)

    def restore_metrics(self, until_iters: int) -> int:
        """Put a resumed run's validation results up to ``until_iters`` back on the page's plots."""
        if not self.enabled or not self.log.jsonl_path.exists():
            return 0
        try:
            records = read_jsonl(self.log.jsonl_path)
        except (OSError, ValueError):
            return 0
        points: dict[float, dict[str, float]] = {}   # a later record for an iteration replaces an earlier one
        for record in records:
            x, values = (record.get("total_iters"), record.get("metrics")) if isinstance(record, dict) else (0, 0)
            if isinstance(x, (int, float)) and isinstance(values, dict) and x <= until_iters:
                points[float(x)] = {k: float(v) for k, v in values.items() if isinstance(v, (int, float))}
        self.metric_history = sorted(points.items()) + self.metric_history
        if self.page is not None and points:
            self.page.update_metrics(self.metric_history)
        return len(points)

    def close(self) -> None:
        """Flush the Visdom queue (a few seconds at most) and stop its thread; close the sinks."""
        if self.visdom is not None:
            self.visdom.close(timeout=5.0)
            self.visdom = None
        sinks, self.sinks = self.sinks, []
        for sink in sinks:
            sink.close()
