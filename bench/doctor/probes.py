"""The doctor's child: one framework (and Keras on it) inspected in this process.

    python -m bench.doctor.probes jax|tensorflow|torch|faiss [--keras]

Sends one "row" event per `Row` on the launcher's pipe (bench/process.py):
the framework's, then with --keras Keras's on that backend (the parent sets
KERAS_BACKEND to the framework). Frameworks are imported inside the probes
only, so the parent can import this module for `Row`. An import that fails
is the row's `error`, not a crash.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.process import EventPipe, child_main

ROW = "row"  # the event carrying one Row
# The GPU extra's install line (pyproject.toml; impls/_shared.GPU_EXTRA).
INSTALL_GPU = "pip install -e '.[gpu]'"
CHECK_DRIVER = "a CUDA build that sees no GPU: check the NVIDIA driver (nvidia-smi)"


@dataclass
class Row:
    """What one framework (or Keras on one backend) is and sees here.

    gpu: whether `--device gpu` would work (the worker's own check), None where it does
    not apply; gpu_detail: the device it would use, or why not; fix: what to install
    (or check) for it; error: why the framework could not be inspected (one line).
    """

    name: str
    package: str
    installed: bool = True
    version: str | None = None
    build: str = ""
    devices: list[str] = field(default_factory=list)
    gpu: bool | None = None
    gpu_detail: str = ""
    fix: str = ""
    error: str = ""


def one_line(exc: BaseException) -> str:
    """`Type: message` on one line."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}".strip()


def dist_version(name: str) -> str | None:
    """The installed version of distribution `name`, or None (nothing imported)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_gpu(row: Row, would_use: Callable[[], Any]) -> None:
    """Run a worker's `--device gpu` check: the device it returns, or why it raised."""
    from impls._shared import NoGpuError

    try:
        row.gpu, row.gpu_detail = True, str(would_use())
    except NoGpuError:
        row.gpu, row.gpu_detail = False, "sees no GPU"
    except Exception as exc:  # noqa: BLE001 - a CUDA that fails to start is an answer too
        row.gpu, row.gpu_detail = False, one_line(exc)


def probe_jax() -> Row:
    import jax

    from impls._shared import JAX_NO_BACKEND
    from impls.jax_native.impl import resolve_device

    row = Row("jax", "jax", version=jax.__version__)
    plugin = dist_version("jax-cuda12-plugin") or dist_version("jax-cuda13-plugin")
    row.build = f"CUDA plugin {plugin}" if plugin else "CPU only (no jax-cuda plugin)"
    for platform in ("cpu", "gpu"):
        try:
            row.devices += [f"{d.platform}:{d.id} ({d.device_kind})" for d in jax.devices(platform)]
        except JAX_NO_BACKEND:  # no such backend here
            continue
    check_gpu(row, lambda: resolve_device("gpu"))
    if not row.gpu:
        row.fix = _jax_fix(jax.__version__, plugin)
    return row


def _jax_fix(version: str, plugin: str | None) -> str:
    """What `--device gpu` needs on jax: the CUDA plugin at jax's own version, then a driver."""
    pinned = f"jax[cuda12]=={version}"
    if plugin is None:
        return f"{INSTALL_GPU} (brings {pinned})"
    if plugin != version:
        return f"pip install '{pinned}' (the CUDA plugin installed is {plugin})"
    return CHECK_DRIVER


def probe_torch() -> Row:
    import torch

    from impls.torch_native.impl import resolve_device

    row = Row("torch", "torch", version=torch.__version__)
    cuda = torch.version.cuda
    row.build = f"CUDA {cuda}" if cuda else "CPU only"
    row.devices = ["cpu"] + [f"cuda:{i} ({torch.cuda.get_device_name(i)})"
                             for i in range(torch.cuda.device_count())]
    check_gpu(row, lambda: resolve_device("gpu"))
    if not row.gpu:
        row.fix = (CHECK_DRIVER if cuda else "pip uninstall torch, then "
                   f"{INSTALL_GPU} (PyPI's default Linux wheel carries CUDA)")
    return row


def probe_tensorflow() -> Row:
    import tensorflow as tf

    row = Row("tensorflow", "tensorflow", version=tf.__version__)
    cuda = tf.sysconfig.get_build_info().get("cuda_version")
    libraries = dist_version("nvidia-cudnn-cu12")  # what tensorflow[and-cuda] brings
    row.build = (f"CUDA {cuda}" + ("" if libraries else ", CUDA libraries not installed")
                 if cuda else "CPU only")
    row.devices = [d.name.removeprefix("/physical_device:") for d in
                   tf.config.list_physical_devices()]
    # No native TensorFlow implementation: keras-tf's worker makes this same check.
    gpus = tf.config.list_physical_devices("GPU")
    row.gpu, row.gpu_detail = bool(gpus), gpus[0].name if gpus else "sees no GPU"
    if not row.gpu:
        row.fix = (f"{INSTALL_GPU} (brings tensorflow[and-cuda])"
                   if not (cuda and libraries) else CHECK_DRIVER)
    return row


def probe_keras(backend: str, backend_row: Row) -> Row:
    """Keras on this process's backend (KERAS_BACKEND): the keras-* workers' own check."""
    row = Row(f"keras ({backend})", "keras")
    if importlib.util.find_spec("keras") is None:
        row.installed, row.fix = False, "pip install -e '.[all]'"
        return row
    import keras

    from impls.keras_model import _backend

    row.version = keras.__version__
    row.build = f"keras-rs {dist_version('keras-rs') or 'not installed'}"
    row.devices = [_backend.for_current_backend("auto").device_name()]  # what auto picks
    check_gpu(row, lambda: _backend.for_current_backend("gpu").device_name())
    row.fix = "" if row.gpu else backend_row.fix
    return row


def probe_faiss() -> Row:
    import faiss

    gpus = faiss.get_num_gpus()  # 0 in faiss-cpu
    package = "faiss-cpu" if dist_version("faiss-cpu") else "faiss"
    return Row("faiss", package, version=faiss.__version__,
               build="CPU only" if not gpus else f"GPU build ({gpus} GPUs)",
               devices=["cpu"] + [f"gpu:{i}" for i in range(gpus)],
               gpu_detail="n/a: the retrieval study runs faiss on the CPU")


PROBES: dict[str, Callable[[], Row]] = {
    "jax": probe_jax, "tensorflow": probe_tensorflow, "torch": probe_torch, "faiss": probe_faiss,
}


def rows(framework: str, keras_backend: bool) -> Iterator[Row]:
    """The framework's row, then (when asked and it imported) Keras on it."""
    try:
        row = PROBES[framework]()
    except Exception as exc:  # noqa: BLE001 - an import that fails is what the doctor reports
        yield Row(framework, framework, error=one_line(exc))
        return
    yield row
    if keras_backend:
        try:
            yield probe_keras(framework, row)
        except Exception as exc:  # noqa: BLE001
            yield Row(f"keras ({framework})", "keras", error=one_line(exc))


def main(argv: list[str], events: EventPipe) -> int:
    """Inspect `argv[0]` (and Keras on it when `argv[1:]` is ["--keras"]); 0."""
    for row in rows(argv[0], argv[1:] == ["--keras"]):
        events(ROW, **dataclasses.asdict(row))
    return 0


if __name__ == "__main__":
    child_main(lambda events: main(sys.argv[1:], events))
