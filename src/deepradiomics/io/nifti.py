"""Refuse truncated NIfTI files, which SimpleITK reads without error, filling the rest with 0.

nibabel parses the header (data offset, shape, type); the data length is checked against
the file size (``.nii``) or the gzip trailer's uncompressed size (``.nii.gz``), falling back
to counting decompressed bytes only when the trailer disagrees (multi-member or > 4 GiB
streams, or truly truncated files).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from deepradiomics.errors import UserError

_CHUNK = 1 << 22


def check_nifti_complete(path: Path) -> None:
    """``UserError`` when a ``.nii``/``.nii.gz`` holds fewer voxel bytes than its header says."""
    name = path.name.lower()
    if not name.endswith((".nii", ".nii.gz")):
        return
    import nibabel as nib

    try:
        proxy = nib.load(str(path)).dataobj  # header only; voxels stay on disk
        expected = int(proxy.offset) + int(np.prod(proxy.shape)) * proxy.dtype.itemsize
    except Exception as err:  # nibabel raises several types for broken headers
        raise UserError(f"{path}: cannot read NIfTI header ({type(err).__name__}: {err})") from None
    if name.endswith(".nii"):
        actual = path.stat().st_size
    else:
        with open(path, "rb") as fh:
            fh.seek(-4, 2)
            if int.from_bytes(fh.read(4), "little") == expected % 2**32:
                return
        actual = _gunzipped_size(path)
    if actual < expected:
        raise UserError(
            f"{path}: file is truncated ({actual} of {expected} bytes of header + voxels); "
            "copy or export it again"
        )


def _gunzipped_size(path: Path) -> int:
    """Bytes that decompress from ``path`` (all gzip members) before the stream ends or breaks."""
    size = 0
    stream = zlib.decompressobj(31)  # 31: gzip wrapper
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                while chunk:
                    size += len(stream.decompress(chunk))
                    if not stream.eof:
                        break
                    chunk, stream = stream.unused_data, zlib.decompressobj(31)
    except zlib.error:  # damaged data or padding after the last member
        pass
    return size
