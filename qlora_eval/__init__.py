"""qlora-eval: train chat models with QLoRA, judge them pairwise, rank them honestly."""

__version__ = "0.1.0"
