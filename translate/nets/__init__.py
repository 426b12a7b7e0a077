"""The networks: generators/ and discriminators/ (each __init__ holds its name table), shared layers, spectral norm.

Networks know no flags and no training loop: they import nothing from options/, training/,
inference/ or visualize/ (tests/test_structure.py holds this).
"""
