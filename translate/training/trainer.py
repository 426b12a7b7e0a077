"""The training loop: Accelerator, optimizers, schedulers, pools, and the order of a step.

Step order: freeze D; (LOGAN: the latent step) generate; G loss, backward, step; unfreeze D; D loss on
detached (pooled) fakes, backward, step.  Only the main process displays and
writes files.  Losses stay on the device between --print_freq reports, so a
step has no host sync except the finiteness check (free on the CPU).
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import signal
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from tqdm import tqdm

from options import TrainConfig, format_options
from translate import checkpoint as ckpt
from translate import devices, files
from translate import stop_signals
from translate.training import latent_optimization, resume, run_lock, validation_hook
from translate._checkout import import_from_checkout
from translate.training.image_pool import ImagePool
from translate.networks import build_networks
from translate.nets.cpu_convs import set_fast_convs
from translate.models import get_model
from translate.training.ema import EMA
from translate.training.objective import Objective
from translate.training.sampling import EpochSampler
from translate.training.schedulers import build_scheduler, step_scheduler
from translate.training.rng_state import seed_everything

datasets = import_from_checkout("datasets")


class Trainer:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        use_cpu = not devices.wants_gpu(cfg.run.gpu_ids)
        # Accelerate keeps its settings in a process-wide singleton; a second run in the
        # same process (tests, the benchmark) may want other settings, so start afresh.
        # The distributed part (PartialState, the process group) is kept.
        AcceleratorState._reset_state()
        self.accelerator = Accelerator(cpu=use_cpu, mixed_precision=cfg.optim.mixed_precision)
        self.is_main = self.accelerator.is_main_process
        self.device = self.accelerator.device
        seed_everything(cfg.optim.seed + self.accelerator.process_index)
        if cfg.optim.deterministic:
            torch.use_deterministic_algorithms(True)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = not cfg.optim.deterministic
        else:
            devices.keep_freed_heap()   # no page faults on every step's reallocations
        if self.is_main:
            devices.warn_if_emulated(self.device, cfg.optim.mixed_precision)
        self.run_dir = Path(cfg.run.checkpoints_dir) / cfg.run.name
        self._build_data()
        self._build_model()
        self.epoch, self.epoch_iter, self.total_iters, self.steps, self.bad_steps = cfg.optim.epoch_count, 0, 0, 0, 0
        self.best = None   # {"metric", "value", "total_iters"} of ckpt_best (--save_best)
        if cfg.run.continue_train:
            resume.resume(self)
        self.display = None
        self._stop, self.stop_signal = None, None   # fit(): the stop request and the signal that stopped it
        self.validator = validation_hook.build_validator(self.cfg, self.run_dir, self.device)

    # ---- set-up ----------------------------------------------------------
    def _build_data(self) -> None:
        data_cfg = self.cfg.data  # no --dataroot: build_dataset uses the built-in data
        self.data_cfg = data_cfg
        self.dataset = datasets.build_dataset(data_cfg, is_train=True)
        acc = self.accelerator
        self.sampler = EpochSampler(len(self.dataset), shuffle=not data_cfg.serial_batches,
                                    seed=self.cfg.optim.seed, rank=acc.process_index,
                                    world_size=acc.num_processes)
        self.loader = datasets.build_dataloader(self.dataset, data_cfg, is_train=True, sampler=self.sampler)

    def _build_model(self) -> None:
        cfg, acc = self.cfg, self.accelerator
        nets = build_networks(cfg.run.model, cfg.net)
        if cfg.net.norm == "syncbatch" and acc.num_processes > 1:
            if self.device.type == "cuda":
                nets = torch.nn.SyncBatchNorm.convert_sync_batchnorm(nets)
            elif self.is_main:  # PyTorch's SyncBatchNorm runs on GPUs only
                print("note: --norm syncbatch needs GPUs; on the CPU each process keeps its own "
                      "batch statistics (DDP copies rank 0's running stats at every step)")
        if cfg.run.verbose and self.is_main:
            for name, net in nets.items():
                print(net)
                print(f"[{name}] {sum(p.numel() for p in net.parameters()) / 1e6:.3f} M parameters")
        nets.to(self.device)
        set_fast_convs(nets, cfg.optim.fast_convs)
        if cfg.optim.channels_last:
            nets.to(memory_format=torch.channels_last)
        self.spec = get_model(cfg.run.model)
        # In the order of the built networks: the optimizers' parameter order, which saved optimizer states follow.
        self.gen_names = [n for n in nets if n in self.spec.generators]
        self.disc_names = [n for n in nets if n in self.spec.discriminators]
        o = cfg.optim
        # Fused Adam: one kernel per step on CUDA, and on the CPU (torch >= 2.4) ~5x faster than foreach.
        fused = {"fused": True} if _fused_adam_supported(self.device) else {"foreach": True}
        opt_g = torch.optim.Adam(itertools.chain(*(nets[n].parameters() for n in self.gen_names)),
                                 lr=o.lr, betas=(o.beta1, 0.999), **fused)
        opt_d = torch.optim.Adam(itertools.chain(*(nets[n].parameters() for n in self.disc_names)),
                                 lr=o.lr_d or o.lr, betas=(o.beta1, 0.999), **fused)
        self.raw_nets = nets  # unwrapped, for checkpoints
        prepared = acc.prepare(*[nets[n] for n in nets], opt_g, opt_d)
        wrapped = torch.nn.ModuleDict(dict(zip(nets.keys(), prepared[:len(nets)])))
        self.opt_g, self.opt_d = prepared[len(nets):]
        # The networks prepare() wrapped (in DDP, when several processes train): they sync gradients.
        self.synced = {n for n in nets if wrapped[n] is not nets[n]}
        if o.compile:
            for name in wrapped:
                wrapped[name] = torch.compile(wrapped[name])
        self.objective = Objective(self.spec, wrapped, cfg.loss)
        self.sched_g = build_scheduler(self.opt_g, o)
        self.sched_d = build_scheduler(self.opt_d, o)
        self.pools = {d: ImagePool(o.pool_size, seed=o.seed + i) for i, d in enumerate(self.objective.judges)}
        # Shadow copies of the generators (--ema_decay); test.py prefers them.
        self.emas = {n: EMA(nets[n], o.ema_decay) for n in self.gen_names} if o.ema_decay > 0 else {}
        # LOGAN (--latent_optimization): bare modules where DDP wraps them, as in the G step's D.
        bare = {n: nets[n] if n in self.synced else wrapped[n] for n in nets}
        self.latent_opt = (latent_optimization.LatentOptimizer(
            self.objective, bare, steps=o.lo_steps, alpha=o.lo_alpha, beta=o.lo_beta, clip=o.lo_clip)
            if o.latent_optimization else None)

    # ---- one step --------------------------------------------------------
    def _set_disc_grad(self, flag: bool) -> None:
        for name in self.disc_names:
            for p in self.raw_nets[name].parameters():
                p.requires_grad_(flag)

    def _to_device(self, batch: dict) -> dict:
        out = {}
        for key, value in batch.items():
            if isinstance(value, torch.Tensor):
                value = value.to(self.device, non_blocking=True)
                if self.cfg.optim.channels_last:
                    value = value.contiguous(memory_format=torch.channels_last)
            out[key] = value
        return out

    def train_step(self, batch: dict) -> tuple[dict, dict]:
        """One G and one D update; returns (detached losses, images)."""
        acc, obj = self.accelerator, self.objective
        batch = self._to_device(batch)
        with acc.autocast():
            self._set_disc_grad(False)
            latents = self.latent_opt.latents(batch, self.steps) if self.latent_opt else None
            images = obj.generate(batch, latents)
            g_loss, g_logs = obj.generator_loss(images, step=self.steps,
                                                discriminators=self._discriminators_for_generator_step())
        if not self._finite(g_loss):
            self._set_disc_grad(True)
            return {}, images
        self.opt_g.zero_grad(set_to_none=True)
        acc.backward(g_loss)
        self.opt_g.step()
        for name, ema in self.emas.items():
            ema.update(self.raw_nets[name])
        self._set_disc_grad(True)
        if not obj.discriminator_on(self.steps):   # D joins at --disc_start (VQGAN)
            self.bad_steps = 0
            return g_logs, images
        fakes = {d: self.pools[d].query(x) for d, x in obj.fake_inputs(images).items()}
        for _ in range(self.cfg.optim.n_critic):     # --n_critic D updates per G update
            with acc.autocast():
                d_loss, d_logs = obj.discriminator_loss(images, fakes, step=self.steps)
            if not self._finite(d_loss):
                return {}, images
            self.opt_d.zero_grad(set_to_none=True)
            acc.backward(d_loss)
            self.opt_d.step()
        self.bad_steps = 0
        return {**g_logs, **d_logs}, images

    def _discriminators_for_generator_step(self) -> dict[str, torch.nn.Module]:
        """D as the G step runs it.  D is frozen there and must not sync, so a DDP-wrapped D runs
        as its bare module: the wrapper would broadcast D's buffers again and set up a gradient
        reduction for parameters that get no gradient.  Otherwise D runs as in the D step
        (compiled with --compile)."""
        nets = self.objective.nets
        return {d: self.raw_nets[d] if d in self.synced else nets[d] for d in self.disc_names}

    def _finite(self, loss: torch.Tensor) -> bool:
        if bool(torch.isfinite(loss.detach())):
            return True
        self.bad_steps += 1
        if self.is_main:
            tqdm.write(f"warning: non-finite loss at iteration {self.steps}; step skipped "
                       f"({self.bad_steps} in a row, limit --max_bad_steps {self.cfg.optim.max_bad_steps})")
        if self.bad_steps >= self.cfg.optim.max_bad_steps:
            raise FloatingPointError(
                f"{self.bad_steps} non-finite losses in a row; stopping. The last good checkpoint in "
                f"{self.run_dir} is intact: lower --lr, try --mixed_precision no or a different --gan_mode.")
        return False

    # ---- the loop --------------------------------------------------------
    def fit(self) -> str:
        """Train to the end.  Returns "done", "nothing" (nothing left to train; no file touched)
        or "stopped" (SIGINT/SIGTERM: ckpt_latest saved at the current iteration, see stop_signal)."""
        cfg, acc = self.cfg, self.accelerator
        last_epoch = cfg.optim.n_epochs + cfg.optim.n_epochs_decay
        nothing = self._nothing_to_train(last_epoch)
        if nothing:
            if self.is_main:
                print(nothing)
            return "nothing"
        lock = run_lock.RunLock(self.run_dir) if self.is_main else None   # only the main process writes
        if lock is not None:
            lock.acquire()
            if lock.note:
                print(lock.note)
        try:
            if self.is_main and not cfg.run.continue_train:
                self._claim_fresh_run()
            self._start_display()
            # From here a signal only asks to stop: the loop stops between steps, saves, and returns.
            with stop_signals.deferred(
                    "stopping after this step and saving ckpt_latest (a second Ctrl-C does not interrupt it)",
                    "still saving ckpt_latest: wait a moment (interrupting would not damage the checkpoints, "
                    "each is written aside and renamed)", quiet=not self.is_main) as self._stop:
                try:
                    while self.epoch <= last_epoch and not self._reached_max_iters() and not self._stop_agreed():
                        self._run_epoch(last_epoch)
                    self.save("latest")
                finally:
                    if self.display is not None:
                        self.display.close()
                    if self.stop_signal is not None and hasattr(self.loader, "shutdown_workers"):
                        self.loader.shutdown_workers()   # while signals still wait: no worker join interrupted
                if self.stop_signal is not None:
                    if self.is_main:
                        print(f"\nstopped by {signal.Signals(self.stop_signal).name} at epoch {self.epoch}, "
                              f"iteration {self.total_iters}: saved {self.run_dir / 'ckpt_latest'}. Resume with "
                              f"the same command plus --continue_train.")
                    return "stopped"
                acc.wait_for_everyone()
        finally:
            if lock is not None:
                lock.release()
        return "done"

    def _nothing_to_train(self, last_epoch: int) -> str | None:
        """Why there is nothing left to train (a finished run resumed), or None."""
        o, done = self.cfg.optim, f"{self.epoch - 1} epochs, {self.total_iters} iterations ({self.steps} steps)"
        tail = "Checkpoints are left as they are."
        if self.epoch > last_epoch:
            return (f"nothing to train: the run has done {done} and ends after epoch {last_epoch} "
                    f"(--n_epochs {o.n_epochs} + --n_epochs_decay {o.n_epochs_decay}). Raise --n_epochs or "
                    f"--n_epochs_decay to train on. {tail}")
        if self._reached_max_iters():
            return (f"nothing to train: the run has done {done} and --max_iters is {o.max_iters}. "
                    f"Raise --max_iters to train on. {tail}")
        return None

    def _claim_fresh_run(self) -> None:
        """A training without --continue_train: never over an earlier run's checkpoints by accident."""
        if self.cfg.run.start_over:
            removed = run_lock.start_over(self.run_dir)
            if removed:
                print(f"--start_over: removed the earlier run's {', '.join(removed)} from {self.run_dir}")
        else:
            run_lock.check_previous_run(self.run_dir, ckpt.load_training_state)

    def _stop_agreed(self) -> bool:
        """Whether a stop signal arrived.  With several processes all ranks must stop at the same
        step (save() waits for all of them), so the flag is all-reduced: one 4-byte all-reduce per
        step, only when world_size > 1, next to the step's own gradient all-reduces."""
        signum = (self._stop.signum if self._stop is not None else None) or 0
        if self.accelerator.num_processes > 1:
            flag = torch.tensor([signum], dtype=torch.int32, device=self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            signum = int(flag.item())
        if signum:
            self.stop_signal = self.stop_signal or signum
        return bool(signum)

    def _reached_max_iters(self) -> bool:
        return self.cfg.optim.max_iters is not None and self.steps >= self.cfg.optim.max_iters

    def _run_epoch(self, last_epoch: int) -> None:
        cfg, bs = self.cfg, self.data_cfg.batch_size
        self.sampler.set_epoch(self.epoch, start=self.epoch_iter)
        self.objective.train()
        bar = tqdm(self.loader, desc=f"epoch {self.epoch}/{last_epoch}", disable=not self.is_main,
                   leave=False, dynamic_ncols=True)
        t_data_start = t_start = time.perf_counter()
        loss_sum, loss_count, images_done = 0.0, 0, 0
        for batch in bar:
            t_data = time.perf_counter() - t_data_start
            t_step = time.perf_counter()
            logs, images = self.train_step(batch)
            n = batch["A"].shape[0] * self.accelerator.num_processes
            before, self.total_iters = self.total_iters, self.total_iters + n
            self.epoch_iter += batch["A"].shape[0]
            self.steps += 1
            images_done += n
            crossed = lambda freq: freq > 0 and before // freq != self.total_iters // freq
            if logs and crossed(cfg.display.print_freq) or (logs and self.steps == 1):
                values = {k: float(v) for k, v in logs.items()}
                loss_sum, loss_count = loss_sum + sum(values.values()), loss_count + 1
                rate = images_done / max(time.perf_counter() - t_start, 1e-9)
                remaining = (len(self.sampler) * bs - self.epoch_iter
                             + (last_epoch - self.epoch) * len(self.dataset)) / max(rate, 1e-9)
                bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()} | {"img/s": f"{rate:.1f}"})
                if self.display is not None:
                    frac = self.epoch - 1 + self.epoch_iter / max(len(self.dataset), 1)
                    self.display.on_losses(self.epoch, self.epoch_iter, frac, values,
                                           time.perf_counter() - t_step, t_data, rate, remaining,
                                           self.total_iters, {"G": self.opt_g.param_groups[0]["lr"],
                                                              "D": self.opt_d.param_groups[0]["lr"]})
            if self.display is not None and (crossed(cfg.display.display_freq) or self.steps == 1):
                save_html = crossed(cfg.display.update_html_freq) or self.steps == 1
                self.display.on_visuals(visual_names(images), self.epoch, self.total_iters, save_html)
            if crossed(cfg.run.save_latest_freq):
                self.save(f"iter_{self.total_iters}" if cfg.run.save_by_iter else "latest")
            self._maybe_validate(before)
            t_data_start = time.perf_counter()
            if self._reached_max_iters() or self._stop_agreed():
                return
        bar.close()
        metric = loss_sum / loss_count if loss_count else 0.0
        step_scheduler(self.sched_g, metric)
        step_scheduler(self.sched_d, metric)
        if self.is_main:
            lr = self.opt_g.param_groups[0]["lr"]
            print(f"end of epoch {self.epoch}/{last_epoch} ({time.perf_counter() - t_start:.1f} s, "
                  f"learning rate {lr:.7f})")
        finished, self.epoch, self.epoch_iter = self.epoch, self.epoch + 1, 0
        if cfg.run.save_epoch_freq > 0 and finished % cfg.run.save_epoch_freq == 0:
            self.save("latest")
            self.save(str(finished))

    # ---- display and checkpoints ----------------------------------------
    def _start_display(self) -> None:
        from translate.visualize import TrainingDisplay  # imports visdom: only when training
        self.run_dir.mkdir(parents=True, exist_ok=True)
        text = format_options(self.cfg.flags)
        if self.is_main:
            files.write_text(self.run_dir / "train_opt.txt", text)
            files.write_text(self.run_dir / "train_config.json", self.cfg.to_json())
        self.display = TrainingDisplay(self.cfg.display, self.run_dir, self.cfg.run.name, text,
                                       enabled=self.is_main, start_iters=self.total_iters,
                                       config=self.cfg.to_dict())
        if self.cfg.run.continue_train:   # the plot goes on from the checkpoint, not from empty
            self.display.restore_history(self.epoch - 1 + self.epoch_iter / max(len(self.dataset), 1))

    def save(self, label: str) -> None:
        self.accelerator.wait_for_everyone()
        if self.is_main:
            nets = dict(self.raw_nets.items()) | {f"ema_{n}": ema.shadow_module for n, ema in self.emas.items()}
            ckpt.save_checkpoint(self.run_dir, label, nets, self.cfg.to_dict(),
                                 resume.training_state(self), model=self.cfg.run.model)
        self.accelerator.wait_for_everyone()

    # ---- validation (--val_freq, --save_best): training/validation_hook.py --------
    def _maybe_validate(self, before: int) -> None:
        freq = self.cfg.metrics.val_freq
        if self.validator is not None and before // freq != self.total_iters // freq:
            self.validate()

    def validate(self) -> dict[str, float]:
        """Main process: metrics on the validation split; others wait for them. Keeps ckpt_best."""
        return validation_hook.validate(self)


def _fused_adam_supported(device: torch.device) -> bool:
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
    except ImportError:
        return device.type == "cuda"
    return device.type in _get_fused_kernels_supported_devices()


def visual_names(images: dict) -> dict:
    """real_a -> real_A: the classic visual labels."""
    return {k[:-1] + k[-1].upper(): v for k, v in images.items()}
