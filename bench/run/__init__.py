"""Training runs: sweep -> runner (parent) => worker (child) -> phases -> one record.

sweep.py expands the command line into runs; runner.py hands them to an
executor (executors.py: this machine; ray_executor.py: a Ray cluster), which
starts one worker process per run where it executes (launch.py, through
bench/process.py), and stores each run's one record; worker.py, in the child,
builds the implementation and times every phase (phases.py); progress.py and
summary.py are the console's bar and table.
"""
