"""The on-disk cache format: one folder of .npy arrays plus manifest.json, verified on read.

Layout of a cache folder (see datasets/README.md for the full contract):

    manifest.json          canonical JSON (sorted keys, 2-space indent)
    arrays/<name>.npy      one plain .npy file per array, no pickles

Integrity: the manifest records each array file's sha256 and a content hash
over the arrays' names, dtypes, shapes and bytes (plus the vocabulary and the
split size); it also carries the sha256 of its own canonical text. `read`
checks all three, so any changed byte is refused; `read_trusted` (a run's
workers, after the parent's `read`) checks only each array's dtype and shape
against the digest-checked manifest. Writing goes to a temporary
sibling folder that is renamed into place only when complete.

numpy, json and hashlib only: loading must stay fast and framework-free.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = "arrays"
TMP_PREFIX, TRASH_PREFIX = ".tmp-", ".trash-"


class StoreError(Exception):
    """A cache folder is missing, incomplete or does not match its manifest."""


def content_hash(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> str:
    """sha256 over `meta` (canonical JSON) and every array's name, dtype, shape and bytes.

    Arrays are taken in sorted name order, so the hash names the content, not
    the file layout or the build.
    """
    digest = hashlib.sha256(f"deeprec-bench cache schema {SCHEMA_VERSION}\n".encode())
    digest.update(canonical_json(meta).encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{list(array.shape)}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=True) + "\n"


def _manifest_digest(manifest: Mapping[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def write(
    final: Path, arrays: Mapping[str, np.ndarray], manifest: dict[str, Any], replace: bool
) -> bool:
    """Write a cache folder atomically at `final`.

    Args:
        final: the cache folder to create.
        arrays: name -> array.
        manifest: everything but "arrays", "content_hash" and "manifest_sha256",
            which are filled in here; must hold "content_meta" (hashed with the arrays).
        replace: move an existing `final` aside first (it was found corrupt or
            a rebuild was forced); otherwise an existing folder wins.

    Returns:
        True if this call's folder is now in place, False if another
        concurrent writer's folder won (ours is discarded).
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    prefix = f"{TMP_PREFIX}{final.name}-{os.getpid()}-"
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=final.parent))
    try:
        (tmp / ARRAYS).mkdir()
        entries = {}
        for name in sorted(arrays):
            data = _npy_bytes(arrays[name])
            (tmp / ARRAYS / f"{name}.npy").write_bytes(data)
            entries[name] = {
                "file": f"{ARRAYS}/{name}.npy",
                "dtype": arrays[name].dtype.str,
                "shape": list(arrays[name].shape),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        manifest = dict(manifest, arrays=entries)
        manifest["content_hash"] = content_hash(arrays, manifest["content_meta"])
        manifest["manifest_sha256"] = _manifest_digest(manifest)
        (tmp / MANIFEST).write_text(canonical_json(manifest), encoding="ascii")
        if replace and final.exists():
            _discard(final)
        try:
            os.rename(tmp, final)  # atomic; fails if another writer got there first
        except OSError:
            if not final.is_dir():
                raise
            return False
        return True
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _discard(folder: Path) -> None:
    """Move a folder out of the way atomically, then delete it."""
    trash = folder.parent / f"{TRASH_PREFIX}{folder.name}-{os.getpid()}-{os.urandom(4).hex()}"
    with contextlib.suppress(FileNotFoundError):  # a concurrent writer moved it already
        os.rename(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of `folder`, checked byte for byte against its own digest."""
    try:
        text = (folder / MANIFEST).read_bytes().decode("ascii")
        manifest = json.loads(text)
    except FileNotFoundError as exc:
        raise StoreError(f"no cache at {folder}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"{folder / MANIFEST} is corrupt ({exc})") from exc
    if not isinstance(manifest, dict) or canonical_json(manifest) != text:
        raise StoreError(f"{folder / MANIFEST} was modified (not in canonical form)")
    if manifest.get("manifest_sha256") != _manifest_digest(manifest):
        raise StoreError(f"{folder / MANIFEST} was modified (its digest does not match)")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise StoreError(f"{folder} has cache schema {manifest.get('schema_version')}, "
                         f"this code reads {SCHEMA_VERSION}")
    return manifest


def read(folder: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Manifest and arrays of `folder`, every file and the content hash verified."""
    manifest = read_manifest(folder)
    arrays = {}
    for name, entry in manifest["arrays"].items():
        path = folder / entry["file"]
        with _open(path) as file:
            data = file.read()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise StoreError(f"{path} does not match its recorded sha256")
        arrays[name] = np.load(io.BytesIO(data), allow_pickle=False)
    if content_hash(arrays, manifest["content_meta"]) != manifest["content_hash"]:
        raise StoreError(f"{folder}: content hash mismatch")
    return manifest, arrays


def read_trusted(folder: Path, manifest: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The arrays `manifest` lists, each checked for presence, dtype and shape only.

    For a folder whose bytes a full `read` verified earlier (a run's parent
    does, its workers call this): nothing is hashed again.
    """
    arrays = {}
    for name, entry in manifest["arrays"].items():
        path = folder / entry["file"]
        try:
            with _open(path) as file:
                array = np.load(file, allow_pickle=False)  # a real file: no extra copy
        except ValueError as exc:  # a truncated or garbled file
            raise StoreError(f"{path} is corrupt ({exc})") from exc
        if array.dtype.str != entry["dtype"] or list(array.shape) != entry["shape"]:
            raise StoreError(f"{path} does not match its manifest's dtype and shape")
        arrays[name] = array
    return arrays


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except FileNotFoundError as exc:
        raise StoreError(f"{path} is missing") from exc


def clean_stale(root: Path) -> None:
    """Delete temporary and trash folders left by writers that no longer run."""
    if not root.is_dir():
        return
    for entry in root.iterdir():
        if not entry.name.startswith((TMP_PREFIX, TRASH_PREFIX)) or not entry.is_dir():
            continue
        try:
            pid = int(entry.name.rsplit("-", 2)[-2])
        except (ValueError, IndexError):
            continue
        if not _alive(pid):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
