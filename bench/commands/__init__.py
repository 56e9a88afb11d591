"""One thin module per sub-command of `python -m bench`: parse, check, call one function.

Each module exposes `add_parser(subparsers)`; bench/cli.py registers them. No
module here imports a framework, and none holds a mechanism of its own: the
work lives in bench/run, bench/parity, bench/retrieval, bench/report and
bench/data.
"""
