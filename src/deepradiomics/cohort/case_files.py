"""Checks of one case's image and mask files: readable, 3D, sane voxels, consistent geometry.

Every file is read in full once: the voxels are needed anyway for NaN/Inf and mask values,
and only decoding the data reveals a corrupt file (a header read succeeds on a truncated
NRRD/MHA). The arrays are reduced to a few statistics right away and then dropped, so a
thread pool over cases holds little memory.

Geometry rule: the mask must share its voxel grid (size, spacing, origin, direction, within
the tolerances of ``cohort.geometry``) with at least one image, normally all of them. An
image on another grid (PET next to CT) is allowed, since preprocessing resamples in physical
space, but it must overlap the reference image and cover the mask's foreground.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from deepradiomics.cohort.geometry import Grid, box_volume, describe_box, intersection
from deepradiomics.cohort.manifest import Manifest
from deepradiomics.cohort.problems import Problem
from deepradiomics.errors import UserError
from deepradiomics.io.readers import read_image

MIN_SPACING_MM = 0.05
MAX_SPACING_MM = 20.0


@dataclass
class _File:
    """What the checks keep of one read file (no voxels)."""

    column: str
    cell: str
    grid: Grid
    foreground: int = 0  # mask only: number of non-zero voxels
    fg_index_box: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # mask, (x, y, z)


class _CaseChecker:
    def __init__(self, manifest: Manifest, index: int) -> None:
        self.manifest = manifest
        self.row = manifest.table.iloc[index]
        self.line = manifest.line_of(index)
        self.case_id = self.row[manifest.columns.case_id]
        self.problems: list[Problem] = []

    def report(self, severity: str, column: str, message: str, cell: str | None = None) -> None:
        self.problems.append(
            Problem(severity, message, self.case_id, self.line, column, cell or None)
        )

    # -- one file -----------------------------------------------------------------------
    def read(self, column: str, kind: str | None, is_mask: bool) -> _File | None:
        cell = self.row[column]
        if not cell:
            return None  # empty cells are judged by the row checks
        path = self.manifest.resolve_path(cell)
        try:
            img = read_image(path, kind=kind, orient=False)
        except UserError as err:
            self.report("error", column, _reason(path, err), cell)
            return None
        grid = Grid.of(img)
        spacing = grid.canonical().spacing
        shown = "(" + ", ".join(f"{s:.4g}" for s in spacing) + ") mm"
        if min(spacing) <= 0:
            self.report("error", column, f"spacing {shown} is not positive", cell)
        elif min(spacing) < MIN_SPACING_MM or max(spacing) > MAX_SPACING_MM:
            self.report(
                "error",
                column,
                f"spacing {shown} is implausible (expected {MIN_SPACING_MM} to "
                f"{MAX_SPACING_MM:g} mm per axis; wrong units in the header?)",
                cell,
            )
        voxels = sitk.GetArrayViewFromImage(img)  # [z, y, x], as stored
        file = _File(column, cell, grid)
        bad, note = 0, ""
        if np.issubdtype(voxels.dtype, np.floating):
            bad = voxels.size - int(np.count_nonzero(np.isfinite(voxels)))
            # ITK 5 reads a NIfTI NaN/Inf as 0: only a float file with zeros can hide some
            if not bad and path.name.lower().endswith((".nii", ".nii.gz")) and not voxels.all():
                try:
                    bad = nifti_nonfinite(path)
                except (OSError, EOFError, ValueError, zlib.error) as err:
                    self.report("error", column, f"cannot read the voxel data ({err})", cell)
                    return None
                note = " (SimpleITK would silently read them as 0)"
        if bad:
            verb = "s are" if bad != 1 else " is"
            self.report("error", column, f"{bad} voxel{verb} NaN or infinite{note}", cell)
            return file
        if is_mask:
            self._mask_values(voxels, file)
        else:
            lo, hi = voxels.min(), voxels.max()
            if lo == hi:
                self.report(
                    "warning", column, f"every voxel has the value {lo:g} (blank image?)", cell
                )
        return file

    def _mask_values(self, voxels: np.ndarray, file: _File) -> None:
        fg = voxels != 0
        labels = np.unique(voxels[fg]).astype(float)  # the foreground is small: cheap
        file.foreground = int(np.count_nonzero(fg))
        odd = labels[(labels < 0) | (labels != np.round(labels))]
        if odd.size:
            self.report(
                "error",
                file.column,
                f"mask is not binary: it holds values {_list(odd)} (expected 0 and 1)",
                file.cell,
            )
        elif labels.size > 1:
            self.report(
                "error",
                file.column,
                f"mask is not binary: it holds labels {_list(labels)} (expected 0 and 1; "
                "for a label map, export the one structure to use)",
                file.cell,
            )
        elif labels.size == 1 and labels[0] != 1:
            self.report(
                "warning",
                file.column,
                f"mask uses the label {labels[0]:g} instead of 1; every non-zero voxel is taken "
                "as foreground",
                file.cell,
            )
        if not file.foreground:
            self.report("error", file.column, "mask is empty (no non-zero voxel)", file.cell)
            return
        # index box of the foreground in (x, y, z) order, out to the voxel edges
        span = [
            np.flatnonzero(np.any(fg, axis=tuple(a for a in range(3) if a != ax)))
            for ax in (2, 1, 0)
        ]
        file.fg_index_box = (
            tuple(float(s[0]) - 0.5 for s in span),
            tuple(float(s[-1]) + 0.5 for s in span),
        )

    # -- the case -----------------------------------------------------------------------
    def run(self) -> list[Problem]:
        cols = self.manifest.columns
        images = [
            f
            for name, mod in cols.modalities.items()
            if (f := self.read(mod.column, mod.kind, is_mask=False)) is not None
        ]
        mask = self.read(cols.mask, None, is_mask=True) if cols.mask else None
        reference = images[0] if images else None
        if mask is not None and images:
            matching = [im for im in images if not mask.grid.differences(im.grid)]
            if matching:
                reference = matching[0]
            else:
                diffs = mask.grid.differences(images[0].grid)
                others = " (nor any other image)" if len(images) > 1 else ""
                self.report(
                    "error",
                    mask.column,
                    f"mask geometry does not match column {images[0].column}{others}: "
                    + "; ".join(diffs),
                    mask.cell,
                )
        if reference is not None:
            for im in images:
                if im is not reference and im.grid.differences(reference.grid):
                    self._overlap(im, reference, mask)
        return self.problems

    def _overlap(self, im: _File, reference: _File, mask: _File | None) -> None:
        """A modality on its own grid must overlap the reference and cover the mask."""
        box, ref_box = im.grid.bounds(), reference.grid.bounds()
        if box_volume(*intersection(box, ref_box)) <= 0:
            self.report(
                "error",
                im.column,
                f"image does not overlap column {reference.column} in physical space "
                f"({describe_box(box)} vs {describe_box(ref_box)})",
                im.cell,
            )
            return
        if mask is None or mask.fg_index_box is None or mask.grid.differences(reference.grid):
            return
        fg_box = mask.grid.index_box_bounds(*mask.fg_index_box)
        covered = box_volume(*intersection(box, fg_box)) / max(box_volume(*fg_box), 1e-12)
        if covered <= 0:
            self.report(
                "error",
                im.column,
                f"image does not cover the mask's foreground ({describe_box(fg_box)})",
                im.cell,
            )
        elif covered < 1 - 1e-6:
            self.report(
                "warning",
                im.column,
                f"image covers only {covered:.0%} of the mask's foreground box",
                im.cell,
            )


def nifti_nonfinite(path: Path) -> int:
    """NaN/Inf voxels stored in a NIfTI file.

    ITK's NIfTI reader (SimpleITK 2.x) silently replaces NaN and +-Inf with 0, fixed only in
    ITK 6 (InsightSoftwareConsortium/ITK#6683), so the image SimpleITK returns cannot show
    them; nibabel reads the stored values. Integer files cannot hold them and are skipped.
    """
    import nibabel as nib

    img = nib.load(str(path))
    if not np.issubdtype(img.get_data_dtype(), np.inexact):
        return 0
    data = np.asanyarray(img.dataobj)
    return int(data.size - np.count_nonzero(np.isfinite(data)))


def _list(values: np.ndarray, limit: int = 6) -> str:
    shown = ", ".join(f"{v:g}" for v in values[:limit])
    return shown + (f", ... ({values.size} distinct)" if values.size > limit else "")


def _reason(path: Path, err: UserError) -> str:
    """The reader's message without the path (the problem line names the file already)."""
    text = str(err).removeprefix(f"{path}: ")
    if "Unable to determine ImageIO reader" in text:
        return "cannot read image (not an image format SimpleITK knows, or a corrupt file)"
    return text


def check_case_files(manifest: Manifest, index: int) -> list[Problem]:
    """Problems with the files of the case at row ``index`` (empty list when all is well)."""
    return _CaseChecker(manifest, index).run()
