"""Inference: loading a trained run, tiling, folder translation, export, and test.py's split."""
