"""Evaluation: metrics equal to the official evaluators, benchmarks, `molmo eval`, Elo and caption F1."""
