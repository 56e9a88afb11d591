"""Shared-start, step-level parity: every implementation from the same weights and batches.

compare.py holds the rule (numpy only, shared with the tests); runner.py
starts one worker per (implementation, depth) through bench/process.py and
writes the JSON the report reads; worker.py, in the child, trains the steps.
"""
