"""Training: the trainer (mechanics: Accelerator, optimizers, the order of a step), the objective
(math: which images, which terms), losses (GAN, L1, regularizers of D), augment (DiffAugment, CutMix),
ema, image pool, sampler, schedulers, RNG state, run lock."""
