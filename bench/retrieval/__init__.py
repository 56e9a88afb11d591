"""Top-k retrieval at scale: every backend against numpy and faiss.

`python -m bench retrieval` generates clustered synthetic embeddings once per
(candidates, dim, seed), computes the exact answer once in numpy, then runs
each contender (bench/retrieval/contenders.py) in its own worker process
(`python -m bench.retrieval.worker`) that memory-maps the same bytes, times
top-k search per (k, batch) and measures recall and peak memory. The parent
(bench/retrieval/runner.py) turns what the workers report into records
(bench/retrieval/records.py, kind "retrieval") in the results store, and
bench/retrieval/report.py renders them. With `--embeddings`, the candidates and
queries are instead those a trained model wrote (bench/retrieval/trained.py),
recorded as their own workload and reported in their own section
(bench/retrieval/report_trained.py). Nothing here imports a framework at
module level: the backends live in bench/retrieval/backends/, imported only by
the worker.
"""
