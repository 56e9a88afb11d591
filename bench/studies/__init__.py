"""Scripts that measure one question in depth and write a committed result.

Each runs as its own program (`python -m bench.studies.<name> --help`), not as
a `bench` sub-command: speed.py (interleaved steady-epoch ratios), jax_phases.py
(where native JAX's step time goes; imports jax, so never import it from the
harness), retrieval_profile.py (a retrieval search split into its phases), scaling.py
(the grid of `bench run` sweeps behind the report's "How cost grows").
Their children start through bench/process.py like every other worker.
"""
