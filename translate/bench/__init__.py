"""The speed benchmark: cli.py (command line, configurations, tables) and measure.py (runners, timing, memory, FLOPs)."""
