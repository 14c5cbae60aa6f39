"""The on-disk cache of prepared cases and case fingerprints, keyed by content.

Layout under the cache folder (file names are hashes: no case or patient identifier)::

    cases/<key>.npz          image float32 [C, D, H, W], mask uint8 [D, H, W] (if any), meta
    cases/<key>.json         the same meta, readable without loading arrays (written first)
    fingerprints/<fkey>.json one case's fingerprint

``content_digest`` hashes the BYTES of a case's input files (BLAKE2b; a DICOM folder:
every file, sorted by relative path), so renaming or touching a file keeps its entries and
editing it invalidates them. ``case_key`` adds the whole resolved plan, so any change of
spacing, crop, window... gives a new key. Every write goes to a hidden temporary file in
the same folder, then ``os.replace`` publishes it (``files.atomic_write``): an interrupted
run leaves at most a ``.tmp`` file, which is never read (and is swept after a day).
"""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepradiomics.cohort.manifest import Case
from deepradiomics.errors import UserError
from deepradiomics.files import TEMP_SUFFIX, atomic_write
from deepradiomics.preprocess.case import PreparedCase
from deepradiomics.preprocess.fingerprint import FINGERPRINT_VERSION
from deepradiomics.preprocess.plan import Plan

CACHE_VERSION = 1  # bump when the preprocessing code changes its output
_CHUNK = 1 << 20


def _hash_file(h: hashlib._Hash, path: Path) -> None:
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)


def _hash_path(h: hashlib._Hash, path: Path) -> None:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        if not files:
            raise UserError(f"{path}: folder holds no file")
        for f in files:
            h.update(f.relative_to(path).as_posix().encode() + b"\0")
            _hash_file(h, f)
    elif path.is_file():
        _hash_file(h, path)
    else:
        raise UserError(f"{path}: file not found")


def content_digest(case: Case, channels: Sequence[str]) -> str:
    """Hash of the bytes of ``case``'s images (in ``channels`` order) and mask."""
    h = hashlib.blake2b(digest_size=16)
    for name in channels:
        if name not in case.images:
            raise UserError(f"case {case.case_id} (line {case.line}): no image for modality {name}")
        h.update(f"image {name}\0".encode())
        _hash_path(h, case.images[name])
    if case.mask is None:
        h.update(b"no mask\0")
    else:
        h.update(b"mask\0")
        _hash_path(h, case.mask)
    return h.hexdigest()


def _key(payload: Mapping[str, Any]) -> str:
    text = json.dumps({"cache_version": CACHE_VERSION, **payload}, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def case_key(digest: str, plan: Plan) -> str:
    """Key of a prepared case: its files' content and every resolved plan parameter."""
    return _key({"content": digest, "plan": plan.to_dict()})


def fingerprint_key(digest: str, modalities: Mapping[str, tuple[str, bool]]) -> str:
    """Key of a case fingerprint: content, and how each modality is read (kind, SUV)."""
    return _key(
        {
            "content": digest,
            "fingerprint_version": FINGERPRINT_VERSION,
            "fingerprint_of": {k: list(v) for k, v in modalities.items()},
        }
    )


class CaseCache:
    """Prepared cases and case fingerprints under one folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def case_path(self, key: str) -> Path:
        return self.root / "cases" / f"{key}.npz"

    def meta_path(self, key: str) -> Path:
        return self.root / "cases" / f"{key}.json"

    def fingerprint_path(self, key: str) -> Path:
        return self.root / "fingerprints" / f"{key}.json"

    def has_case(self, key: str) -> bool:
        return self.case_path(key).is_file()

    def save_case(self, key: str, case: PreparedCase) -> None:
        arrays = {"image": case.image, "meta": np.array(json.dumps(case.meta))}
        if case.mask is not None:
            arrays["mask"] = case.mask
        meta = json.dumps(case.meta, indent=1).encode()
        atomic_write(self.meta_path(key), lambda f: f.write(meta))
        # the .npz last (its presence marks a complete entry); uncompressed: loading a
        # cohort into memory is then bound by disk, not zlib
        atomic_write(self.case_path(key), lambda f: np.savez(f, **arrays))

    def load_meta(self, key: str) -> dict[str, Any]:
        path = self.meta_path(key)
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise UserError(
                f"{path}: cached case metadata is unreadable ({err}); rerun preprocess"
            ) from None

    def load_case(self, key: str) -> PreparedCase:
        path = self.case_path(key)
        try:
            with np.load(path, allow_pickle=False) as z:
                mask = z["mask"] if "mask" in z.files else None
                return PreparedCase(image=z["image"], mask=mask, meta=json.loads(str(z["meta"])))
        except FileNotFoundError:
            raise UserError(f"{path}: cached case is missing; rerun preprocess") from None
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as err:
            raise UserError(
                f"{path}: cached case is unreadable ({err}); delete it and rerun"
            ) from None

    def save_fingerprint(self, key: str, record: Mapping[str, Any]) -> None:
        data = json.dumps(record).encode()
        atomic_write(self.fingerprint_path(key), lambda f: f.write(data))

    def load_fingerprint(self, key: str) -> dict[str, Any] | None:
        """The stored record, or ``None`` when absent or unreadable (then recomputed)."""
        try:
            return json.loads(self.fingerprint_path(key).read_text())
        except (OSError, ValueError):
            return None

    def sweep_temp_files(self, older_than_s: float = 86400.0) -> int:
        """Delete temporary files left by interrupted runs (old enough not to be in use)."""
        removed = 0
        now = time.time()
        for sub in ("cases", "fingerprints"):
            for p in (self.root / sub).glob(f".*{TEMP_SUFFIX}"):
                try:
                    if now - p.stat().st_mtime > older_than_s:
                        p.unlink()
                        removed += 1
                except OSError:
                    pass
        return removed
