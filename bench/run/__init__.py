"""Training runs: sweep -> runner (parent) => worker (child) -> phases -> one record.

sweep.py expands the command line into runs; runner.py starts one worker
process per run through bench/process.py and makes sure each ends recorded;
worker.py, in the child, builds the implementation and times every phase
(phases.py); progress.py and summary.py are the console's bar and table.
"""
