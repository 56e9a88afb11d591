"""deeprec-bench: one deep retrieval recommender, several frameworks, measured honestly.

The harness package. It must never import jax, torch, tensorflow or keras at
module level: the parent process stays framework-free so every run can happen
in its own worker with its own environment (see bench/run/worker.py).
"""

__version__ = "0.1.0"
