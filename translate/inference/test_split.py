"""test.py's work: translate the test split (or a folder) and write a results page."""
from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from options import TestConfig
from translate import devices, stop_signals
from translate._checkout import import_from_checkout
from translate.inference.loading import load_generators
from translate.models import MODELS, ModelSpec

datasets = import_from_checkout("datasets")

# What each model shows per row (the model table's rows), in order.
ROWS = {name: spec.rows for name, spec in MODELS.items()}
# How a row image is made: (domain the generator reads, domain it writes, the image it translates).
# real_A / real_B come from the batch; "real" / "fake" are the single-folder names of real_A / fake_B.
RECIPES = {"fake_B": ("a", "b", "real_A"), "fake_A": ("b", "a", "real_B"),
           "rec_A": ("b", "a", "fake_B"), "rec_B": ("a", "b", "fake_A")}
ALIASES = {"real": "real_A", "fake": "fake_B"}


def _shown_as(model: str, trained_as: str) -> str:
    """The model whose rows test.py shows: a test-only --model (one folder, one generator) says so
    itself; otherwise the model the weights were trained as."""
    return trained_as if MODELS[model].trainable else model


def _translate(cfg: TestConfig, gens: dict, batch: dict, model: str) -> dict[str, torch.Tensor]:
    """The row images of ``model`` that the batch and the loaded generators can make, computed in
    row order (so the generators run in a fixed order: dropout and train-mode batch norm see the
    same calls every time).  Without real B images (single-folder data) only A -> B runs."""
    spec: ModelSpec = MODELS[model]
    by_domains = {spec.generators[name]: g for name, g in gens.items() if name in spec.generators}
    images = {"real_A": batch["A"]}
    if "B" in batch:
        images["real_B"] = batch["B"]
    else:
        by_domains = {domains: g for domains, g in by_domains.items() if domains == ("a", "b")}

    def make(label: str):
        if label not in images and label in RECIPES:
            reads, writes, source = RECIPES[label]
            source_image = make(source)
            if (reads, writes) in by_domains and source_image is not None:
                images[label] = by_domains[reads, writes](source_image)
        return images.get(label)

    made = {label: make(ALIASES.get(label, label)) for label in spec.rows}
    return {label: image for label, image in made.items() if image is not None}


def run_test(cfg: TestConfig) -> Path:
    from translate.visualize.html import write_results_page
    from translate.visualize.images import save_image, tensor_to_image

    run_dir = Path(cfg.run.checkpoints_dir) / cfg.run.name
    loaded = load_generators(run_dir, cfg.run.epoch, model=cfg.run.model, net=cfg.net,
                             model_suffix=cfg.model_suffix)
    model = cfg.run.model
    if MODELS[model].trainable and model != loaded.model and cfg.data.dataset_mode != "single":
        print(f"note: the checkpoint was trained as --model {loaded.model}; testing as {model}")
    data_cfg = cfg.data  # no --dataroot: build_dataset uses the built-in data
    dataset = datasets.build_dataset(data_cfg, is_train=False)
    loader = datasets.build_dataloader(dataset, data_cfg, is_train=False)   # its workers ignore Ctrl-C
    device = devices.pick_device(cfg.run.gpu_ids)
    gens = {}
    for name, g in loaded.generators.items():
        g = g.to(device)
        g.train(not cfg.eval)  # classic: without --eval, batch norm and dropout stay in train mode
        if cfg.channels_last:
            g = g.to(memory_format=torch.channels_last)
        gens[name] = torch.compile(g) if cfg.compile else g
    out_dir = Path(cfg.results_dir) / cfg.run.name / f"{cfg.data.phase}_{cfg.run.epoch}"
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    labels = ROWS[_shown_as(model, loaded.model)]
    if cfg.metrics.enabled and not any(f in labels and r in labels for f, r in METRIC_PAIRS):
        from translate.metrics import MetricError
        raise MetricError("--metrics needs target images to compare with: --model test (one folder) has "
                          "none; use `python -m translate.metrics FAKE_DIR REAL_DIR`")
    devices.warn_if_emulated(device, cfg.mixed_precision)
    amp = devices.autocast(device, cfg.mixed_precision)
    rows, done, saved = [], 0, {}
    total = min(cfg.num_test, len(dataset))
    # A stop signal ends the loop between batches; the page then shows what was translated.
    with stop_signals.deferred("stopping after this batch and writing the results page",
                               "already stopping: writing the results page") as stop, \
            torch.inference_mode(), amp, tqdm(total=total, desc="translating", unit="img") as bar:
        for batch in loader:
            if done >= cfg.num_test or stop.signum is not None:
                break
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            visuals = _translate(cfg, gens, batch, _shown_as(model, loaded.model))
            for i in range(batch["A"].shape[0]):
                if done >= cfg.num_test:
                    break
                stem = Path(batch["A_paths"][i]).stem
                row = []
                for label in labels:
                    if label not in visuals:
                        continue
                    image = _aspect(tensor_to_image(visuals[label][i].float()), cfg.aspect_ratio)
                    name = f"{stem}_{label}.png"
                    save_image(image, image_dir / name)
                    row.append((label, f"images/{name}"))
                    saved.setdefault(label, []).append(str(image_dir / name))
                rows.append((stem, row))
                done += 1
                bar.update(1)
        if hasattr(loader, "shutdown_workers"):
            loader.shutdown_workers()   # while signals still wait: no worker join is interrupted
        metrics = None
        if cfg.metrics.enabled and stop.signum is None:
            try:
                with stop_signals.raising():   # metrics can take minutes: a Ctrl-C skips them, the page stays
                    metrics = _metrics(cfg, saved, bool(getattr(dataset, "paired", False)), device, out_dir)
            except stop_signals.Interrupted as late:
                stop.signum = late.signum
        pages = write_results_page(out_dir, f"{cfg.run.name} {cfg.data.phase} {cfg.run.epoch}", rows,
                                   page_size=cfg.html_page_size, metrics=metrics)
    if stop.signum is not None:
        print(f"Stopped by {stop.name} after {done} of {total} images (translated with {loaded.source}); "
              f"results page of those: {pages[0]}\nRun the same command again to translate all of them.")
        raise stop_signals.Interrupted(stop.signum, reported=True)   # test.py exits 130 / 143
    print(f"Translated {done} images with {loaded.source}\nResults page: {pages[0]}")
    return Path(pages[0])


# test.py --metrics: which saved images are compared with which (translation, ground truth / target).
METRIC_PAIRS = (("fake_B", "real_B"), ("fake_A", "real_A"))


def _metrics(cfg: TestConfig, saved: dict[str, list[str]], paired: bool, device, out_dir: Path) -> dict:
    """FID/KID of each translation against the real images of its target domain (and, on paired
    data, L1/PSNR/SSIM against the ground truth); written to out_dir/metrics.json."""
    import json
    from translate.files import write_text
    from translate.metrics import folders
    from translate.metrics.statistics import MetricError
    todo = [(f, r) for f, r in METRIC_PAIRS if saved.get(f) and saved.get(r)]
    if not todo:
        raise MetricError("--metrics needs target images to compare with: --model test (one folder) has "
                          "none; use `python -m translate.metrics FAKE_DIR REAL_DIR`")
    results = {}
    for fake, real in todo:
        names = ("fid", "kid") + (folders.PAIRED_METRICS if paired else ())
        # Paired: files <stem>_fake_B.png and <stem>_real_B.png match once the label is cut off.
        pairs = list(zip(saved[fake], saved[real]))
        m = cfg.metrics
        result = folders.compare(saved[fake], saved[real], paired=False, metrics=("fid", "kid"),
                                 inception=m.inception, batch_size=m.batch_size, device=str(device),
                                 kid_subsets=m.kid_subsets, kid_subset_size=m.kid_subset_size)
        if paired:
            result.update(folders.paired_values(pairs, folders.PAIRED_METRICS, result["skipped"]))
            result["n_pairs"] = len(pairs)
        results[fake] = {"against": real, "paired": paired, "metrics": list(names), **result}
        print(f"{fake} vs {real}:\n{folders.format_report(result)}")
    write_text(out_dir / "metrics.json", json.dumps(results, indent=2))
    print(f"Metrics: {out_dir / 'metrics.json'}")
    return results


def _aspect(image, ratio: float):
    """Stretch the saved image as the classic --aspect_ratio does (width / height)."""
    if ratio == 1.0:
        return image
    from PIL import Image
    import numpy as np
    h, w = image.shape[:2]
    size = (int(w * ratio), h) if ratio > 1 else (w, int(h / ratio))
    return np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC))
