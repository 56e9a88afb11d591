"""The on-disk cache format: one folder of .npy arrays plus manifest.json, verified on read.

Layout of a cache folder (see datasets/README.md for the full contract):

    manifest.json          canonical JSON (sorted keys, 2-space indent)
    arrays/<name>.npy      one plain .npy file per array, no pickles

Integrity: the manifest records each array file's sha256 and a content hash
over the arrays' names, dtypes, shapes and bytes (plus the vocabulary and the
split size); it also carries the sha256 of its own canonical text. `read`
checks all three, so any changed byte is refused; `read_trusted` (a run's
workers, after the parent's `read`) checks only each array's dtype and shape
against the digest-checked manifest. A manifest missing what readers need,
or a file where a folder should be (or the reverse), is refused the same way.

Versions: each build is written to a temporary sibling folder, renamed to
`<name>.<build id>` when complete, and the cache path readers use,
`<name>`, is a symlink replaced in one rename to point at it. Readers resolve
the symlink once per read (`current`), so a forced rebuild never shows them
no cache or a mix of two builds; the previous version stays until the next
build, and older ones until their successor has been named for
READER_GRACE_S (a slow reader may still be loading one). A plain `<name>/`
folder (built before versions existed) is read as it is and becomes a version
on the next build. Folders are created 0777
less the umask (0755 usually), files 0666 less the umask.

numpy, json and hashlib only (and bench.process's signal mask): loading must stay
fast and framework-free.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import io
import json
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from bench.process import signals_deferred

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


READER_GRACE_S = 60.0  # how long a superseded version stays for readers that resolved it


def write(
    final: Path, arrays: Mapping[str, np.ndarray], manifest: dict[str, Any], replace: bool
) -> bool:
    """Write a new version of a cache and point `final` at it atomically.

    The arrays and manifest go to a private temporary folder, which is renamed
    to a version folder `<final>.<build id>` once complete; then `final`, a
    symlink, is replaced by one to the new version in one rename. A reader
    sees the old version or the new one, never no cache (see `current`).

    Args:
        final: the cache path readers use (cache.cache_path).
        arrays: name -> array.
        manifest: everything but "arrays", "content_hash" and "manifest_sha256",
            which are filled in here; must hold "content_meta" (hashed with the arrays).
        replace: point `final` at this build even when it already names a cache
            (it was found corrupt or a rebuild was forced); otherwise an existing one wins.

    Returns:
        True if this call's version is now the one `final` names, False if another
        concurrent writer's won (ours is discarded).
    """
    final.parent.mkdir(parents=True, exist_ok=True)  # 0777 less the umask, as every folder here
    tmp = final.parent / f"{TMP_PREFIX}{final.name}-{os.getpid()}-{os.urandom(4).hex()}"
    try:  # an interrupt that lands just after mkdir returns must still remove the folder
        os.mkdir(tmp)  # not tempfile.mkdtemp: its 0700 would hide a shared cache from other users
        _write_folder(tmp, arrays, manifest)
        # Ctrl-C or SIGTERM waits for the version to be named and pointed at (or discarded):
        # never a version no pointer names, nor a plain folder moved aside and not replaced.
        with signals_deferred():
            version = final.parent / f"{final.name}.{time.time_ns()}"
            os.rename(tmp, version)
            placed = _place(final, version, replace)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if placed:
        clean_versions(final)
    return placed


def _place(final: Path, version: Path, replace: bool) -> bool:
    """Point `final` at `version`; without `replace` an existing cache wins (`version` deleted)."""
    if replace:
        _point(final, version)
        return True
    try:
        os.symlink(version.name, final)  # atomic: fails if another writer got there first
    except FileExistsError:
        shutil.rmtree(version, ignore_errors=True)
        return False
    return True


def _write_folder(tmp: Path, arrays: Mapping[str, np.ndarray], manifest: dict[str, Any]) -> None:
    """The arrays and the completed manifest (file digests, content hash) under `tmp`."""
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


def _point(final: Path, version: Path) -> None:
    """Make `final` a symlink to `version` (a sibling) in one rename.

    A plain folder at `final` (a cache from before versioned folders, or one
    a user put there) cannot be renamed over: it is moved aside as a version
    of its own first, then left for `clean_versions`.
    """
    link = final.parent / f"{TMP_PREFIX}{final.name}-{os.getpid()}-{os.urandom(4).hex()}.link"
    os.symlink(version.name, link)
    try:
        if final.is_dir() and not final.is_symlink():
            older = final.parent / f"{final.name}.{int(version.name.rsplit('.', 1)[1]) - 1}"
            with contextlib.suppress(FileNotFoundError):  # a concurrent writer moved it
                os.rename(final, older)
        os.replace(link, final)
    finally:
        link.unlink(missing_ok=True)


def current(final: Path) -> Path:
    """The version folder `final` names now: readers resolve it once per read.

    Every file of one read then comes from one version, whatever a
    concurrent rebuild does to the pointer meanwhile. A plain folder (a cache
    from before versioned folders) is its own version.
    """
    return Path(os.path.realpath(final))


def versions(final: Path) -> list[Path]:
    """Every version folder of `final`, oldest build first."""
    found = []
    for entry in final.parent.glob(f"{glob.escape(final.name)}.*"):
        build_id = entry.name[len(final.name) + 1:]
        if build_id.isdigit() and entry.is_dir() and not entry.is_symlink():
            found.append((int(build_id), entry))
    return [entry for _, entry in sorted(found)]


def clean_versions(final: Path, grace_s: float | None = None) -> None:
    """Delete versions older than the one before `final`'s target, once readers are done.

    The target and the version just before it stay, so a reader that
    resolved the previous version a moment ago still finds its files; newer
    ones belong to builds still switching the pointer. An older version goes
    only when its successor was named more than `grace_s` ago: a reader that
    resolved it then has had that long to finish (rebuilds in quick
    succession otherwise deleted a version under a reader still loading it).
    `grace_s` None: READER_GRACE_S.
    """
    grace_s = READER_GRACE_S if grace_s is None else grace_s
    target = current(final)
    older = []
    for version in versions(final):
        if version == target:
            break
        older.append(version)
    else:
        return  # the target is not a version: leave everything
    now_ns = time.time_ns()
    for version, successor in zip(older[:-1], older[1:], strict=True):
        if now_ns - _build_ns(successor) > grace_s * 1e9:
            shutil.rmtree(version, ignore_errors=True)


def _build_ns(version: Path) -> int:
    """When `version` was named (its suffix): the moment its predecessor stopped being new."""
    return int(version.name.rsplit(".", 1)[1])


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of `folder`, checked byte for byte against its own digest and shape.

    Any damage, a file where a folder should be included, is a StoreError.
    """
    folder = current(folder)
    try:
        text = (folder / MANIFEST).read_bytes().decode("ascii")
        manifest = json.loads(text)
    except FileNotFoundError as exc:
        raise StoreError(f"no cache at {folder}") from exc
    except NotADirectoryError as exc:
        raise StoreError(f"{folder} is a file, not a cache folder") from exc
    except OSError as exc:
        raise StoreError(f"cannot read {folder / MANIFEST} ({exc.strerror})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"{folder / MANIFEST} is corrupt ({exc})") from exc
    if not isinstance(manifest, dict) or canonical_json(manifest) != text:
        raise StoreError(f"{folder / MANIFEST} was modified (not in canonical form)")
    if manifest.get("manifest_sha256") != _manifest_digest(manifest):
        raise StoreError(f"{folder / MANIFEST} was modified (its digest does not match)")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise StoreError(f"{folder} has cache schema {manifest.get('schema_version')}, "
                         f"this code reads {SCHEMA_VERSION}")
    why = _manifest_problem(manifest)
    if why:
        raise StoreError(f"{folder / MANIFEST} is incomplete ({why})")
    return manifest


_ENTRY = {"file": str, "dtype": str, "shape": list, "sha256": str}


def _manifest_problem(manifest: Mapping[str, Any]) -> str | None:
    """What the readers need that a digest-consistent manifest lacks, or None."""
    meta = manifest.get("content_meta")
    if not (isinstance(meta, dict) and isinstance(meta.get("num_train"), int)
            and isinstance(meta.get("vocabulary"), dict)):
        return "no content_meta with num_train and vocabulary"
    if not isinstance(manifest.get("content_hash"), str):
        return "no content_hash"
    arrays = manifest.get("arrays")
    if not isinstance(arrays, dict) or not arrays:
        return "no arrays list"
    for name, entry in arrays.items():
        if not (isinstance(entry, dict)
                and all(isinstance(entry.get(k), t) for k, t in _ENTRY.items())):
            return f"array {name}: not a file, dtype, shape and sha256"
        if entry["file"] != f"{ARRAYS}/{name}.npy":
            return f"array {name}: file {entry['file']!r} is not {ARRAYS}/{name}.npy"
    return None


def read(folder: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Manifest and arrays of `folder`, every file and the content hash verified."""
    folder = current(folder)  # one version for the whole read
    manifest = read_manifest(folder)
    arrays = {}
    for name, entry in manifest["arrays"].items():
        path = folder / entry["file"]
        with _open(path) as file:
            data = file.read()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise StoreError(f"{path} does not match its recorded sha256")
        try:
            arrays[name] = np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError as exc:  # bytes that match a forged sha256 but are no .npy
            raise StoreError(f"{path} is corrupt ({exc})") from exc
    if content_hash(arrays, manifest["content_meta"]) != manifest["content_hash"]:
        raise StoreError(f"{folder}: content hash mismatch")
    return manifest, arrays


def read_trusted(folder: Path, manifest: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The arrays `manifest` lists, memory-mapped, each checked for dtype and shape only.

    For a folder whose bytes a full `read` verified earlier (a run's parent
    does, its workers call this): nothing is hashed again, and nothing is read
    until used. The maps are copy-on-write: writing to an array never changes
    the cache, and an array file unlinked by a later rebuild stays readable.
    `folder` should be the version `current` resolved when `manifest` was read.
    """
    arrays = {}
    for name, entry in manifest["arrays"].items():
        path = folder / entry["file"]
        array = _map(path)
        if array.dtype.str != entry["dtype"] or list(array.shape) != entry["shape"]:
            raise StoreError(f"{path} does not match its manifest's dtype and shape")
        arrays[name] = array
    return arrays


def _map(path: Path) -> np.ndarray:
    """The .npy file at `path`, memory-mapped copy-on-write."""
    try:
        array = np.load(path, mmap_mode="c", allow_pickle=False)
    except FileNotFoundError as exc:
        raise StoreError(f"{path} is missing") from exc
    except OSError as exc:  # a folder where the file should be, or a file for arrays/
        raise StoreError(f"cannot read {path} ({exc.strerror})") from exc
    except (ValueError, EOFError) as exc:  # a truncated or garbled file
        raise StoreError(f"{path} is corrupt ({exc})") from exc
    return array.view(np.ndarray)  # a plain array (the map stays alive as its base)


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except FileNotFoundError as exc:
        raise StoreError(f"{path} is missing") from exc
    except OSError as exc:  # a folder where the file should be, or a file for arrays/
        raise StoreError(f"cannot read {path} ({exc.strerror})") from exc


def clean_stale(root: Path) -> None:
    """Delete temporary and trash folders left by writers that no longer run."""
    if not root.is_dir():
        return
    for entry in root.iterdir():
        if not entry.name.startswith((TMP_PREFIX, TRASH_PREFIX)):
            continue
        try:
            pid = int(entry.name.rsplit("-", 2)[-2])
        except (ValueError, IndexError):
            continue
        if _alive(pid):
            continue
        if entry.is_symlink() or not entry.is_dir():  # a pointer a killed writer never placed
            entry.unlink(missing_ok=True)
        else:
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
