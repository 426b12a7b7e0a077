"""Training: the trainer (mechanics), the objective (math), losses, stabilizers, image pool, sampler, schedulers, RNG state, run lock."""
