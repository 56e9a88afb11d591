"""`python -m bench doctor`: what every framework sees here, each inspected in its own child.

runner.py (parent, never imports a framework) starts one child per framework
(probes.py) through bench/process.py, gathers one `Row` per framework and per
Keras backend, and formats them; the GPU verdict in each row is the very
check a `--device gpu` worker makes (impls/*: resolve_device, the Keras
backend's), so the doctor and a run cannot disagree.
"""
