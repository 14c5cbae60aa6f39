"""Speed of one CT case from file to a normalised 1 mm crop: ours vs TorchIO vs MONAI.

A synthetic 512 x 512 x 120 CT at 0.7 x 0.7 x 5 mm (int16 HU: air, body, lungs, a 30 mm
tumour) and its tumour mask are written to NIfTI (.nii.gz) first; every pipeline then
starts from the files and ends with a 64 x 64 x 64 crop at 1 mm around the tumour, clipped
to the soft-tissue window (W400 / L40) and scaled to [0, 1]:

- ours, ROI path: ``preprocess.apply_plan`` (read, resample only the 64 mm crop grid);
- ours, full-volume path: read, ``resample_to_spacing`` of the whole volume to 1 mm
  (image linear, mask nearest), then window and crop around the mask (the way the
  libraries below work);
- TorchIO: ``Resample(1)``, ``Clamp``, ``RescaleIntensity``, ``CropOrPad(64, mask_name=...)``;
- MONAI: ``LoadImaged``, ``EnsureChannelFirstd``, ``Spacingd(1 mm)``,
  ``ScaleIntensityRanged(clip)``, ``CropForegroundd(mask)``, ``ResizeWithPadOrCropd(64)``.

Each pipeline runs once to warm up, then ``--repeats`` rounds interleaved; the median is
reported with the mean of the central 16^3 voxels (all should be close to the tumour's
(60 + 160) / 400 = 0.55). ``--memory`` also runs each pipeline in a fresh process and
reports its peak resident memory above the process after imports.

    .venv/bin/python bench/preprocess_speed.py [--repeats 3] [--memory]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk

SHAPE = (120, 512, 512)  # z, y, x
SPACING = (5.0, 0.7, 0.7)
CROP = 64
WINDOW = (-160.0, 240.0)
TUMOUR_MM = (300.0, 190.0, 150.0)  # physical (z, y, x) of the tumour centre from the origin
METHODS = ("ours_roi", "ours_full", "torchio", "monai")


def make_volume(folder: Path) -> tuple[Path, Path]:
    """Write the synthetic CT and its mask as .nii.gz; returns their paths."""
    rng = np.random.default_rng(0)
    z, y, x = (np.arange(n, dtype=np.float32) * s for n, s in zip(SHAPE, SPACING, strict=False))
    zz, yy, xx = z[:, None, None], y[None, :, None], x[None, None, :]
    cy, cx = SHAPE[1] * SPACING[1] / 2, SHAPE[2] * SPACING[2] / 2
    body = ((yy - cy) / 130) ** 2 + ((xx - cx) / 170) ** 2 <= 1
    lungs = (
        ((((yy - cy) / 80) ** 2 + ((np.abs(xx - cx) - 75) / 55) ** 2) <= 1)
        & (zz > 150)
        & (zz < 500)
    )
    tumour = (zz - TUMOUR_MM[0]) ** 2 + (yy - TUMOUR_MM[1]) ** 2 + (xx - TUMOUR_MM[2]) ** 2 <= 15**2
    hu = np.full(SHAPE, -1000, np.int16)
    hu[np.broadcast_to(body, SHAPE)] = 40
    hu[lungs] = -850
    hu[tumour] = 60
    hu += rng.normal(0, 12, SHAPE).astype(np.int16)
    paths = []
    for name, arr in (("ct", hu), ("mask", tumour.astype(np.uint8))):
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing(SPACING[::-1])
        path = folder / f"{name}.nii.gz"
        sitk.WriteImage(img, str(path), useCompression=True)
        paths.append(path)
    return paths[0], paths[1]


def _centre_mean(arr: np.ndarray) -> float:
    a = np.asarray(arr).reshape(arr.shape[-3:])
    c = [n // 2 for n in a.shape]
    return float(a[c[0] - 8 : c[0] + 8, c[1] - 8 : c[1] + 8, c[2] - 8 : c[2] + 8].mean())


def pipelines(ct: Path, mask: Path) -> dict[str, Callable[[], np.ndarray]]:
    """Each entry runs one case from the files to the final crop and returns the image."""
    from deepradiomics.cohort.manifest import Case
    from deepradiomics.io.readers import read_image
    from deepradiomics.preprocess.case import apply_plan
    from deepradiomics.preprocess.crop import mask_box
    from deepradiomics.preprocess.normalise import scale_window
    from deepradiomics.preprocess.plan import ModalityPlan, Plan
    from deepradiomics.preprocess.resample import resample_to_spacing

    plan = Plan(
        spacing=(1.0, 1.0, 1.0),
        shape=(CROP,) * 3,
        crop_mm=(float(CROP),) * 3,
        anisotropic=False,
        anisotropic_axis=None,
        interpolation="linear",
        window_range=(0.0, 1.0),
        modalities=(ModalityPlan("ct", "ct", "ct", True, WINDOW, None, -1024.0, "soft_tissue"),),
        spacing_rule="bench",
    )
    case = Case("bench", "bench", {"ct": ct}, mask, line=2)

    def ours_roi():
        return apply_plan(case, plan).image

    def ours_full():
        img = resample_to_spacing(read_image(ct, kind="ct"), (1.0, 1.0, 1.0), "linear", -1024.0)
        lab = resample_to_spacing(read_image(mask), (1.0, 1.0, 1.0), "nearest", 0.0)
        box = mask_box(lab)
        centre = np.round(lab.TransformPhysicalPointToContinuousIndex(box.centre)).astype(int)[::-1]
        lo = centre - CROP // 2
        arr = sitk.GetArrayViewFromImage(img)
        out = np.full((CROP,) * 3, -1024.0, np.float32)
        src = [slice(max(a, 0), min(a + CROP, n)) for a, n in zip(lo, arr.shape, strict=False)]
        dst = [slice(s.start - a, s.stop - a) for s, a in zip(src, lo, strict=False)]
        out[tuple(dst)] = arr[tuple(src)]
        return scale_window(out, *WINDOW)

    def torchio():
        import torchio as tio

        subject = tio.Subject(ct=tio.ScalarImage(ct), mask=tio.LabelMap(mask))
        transform = tio.Compose(
            [
                tio.Resample(1.0),
                tio.Clamp(*WINDOW),
                tio.RescaleIntensity(out_min_max=(0, 1), in_min_max=WINDOW),
                tio.CropOrPad(CROP, mask_name="mask"),
            ]
        )
        return transform(subject)["ct"].data.numpy()

    def monai():
        from monai import transforms as mt

        keys = ["image", "label"]
        transform = mt.Compose(
            [
                mt.LoadImaged(keys=keys),
                mt.EnsureChannelFirstd(keys=keys),
                mt.Spacingd(keys=keys, pixdim=(1.0, 1.0, 1.0), mode=("bilinear", "nearest")),
                mt.ScaleIntensityRanged(
                    keys="image", a_min=WINDOW[0], a_max=WINDOW[1], b_min=0.0, b_max=1.0, clip=True
                ),
                mt.CropForegroundd(keys=keys, source_key="label", allow_smaller=True),
                mt.ResizeWithPadOrCropd(keys=keys, spatial_size=(CROP,) * 3),
            ]
        )
        out = transform({"image": str(ct), "label": str(mask)})["image"]
        return np.asarray(out.detach().cpu().numpy() if hasattr(out, "detach") else out)

    return {"ours_roi": ours_roi, "ours_full": ours_full, "torchio": torchio, "monai": monai}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _one(method: str, ct: Path, mask: Path) -> None:
    """Child process: run one pipeline once; print seconds and peak RSS above the RSS
    after imports (Linux: the high-water mark is reset through /proc/self/clear_refs)."""
    fn = pipelines(ct, mask)[method]
    import monai  # noqa: F401  (imports belong to the baseline, not to the pipeline)
    import torchio  # noqa: F401

    Path("/proc/self/clear_refs").write_text("5")
    base = _status_kib("VmRSS")
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_mib": (_status_kib("VmHWM") - base) / 1024}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--memory", action="store_true", help="peak memory per pipeline (subprocesses)")
    ap.add_argument("--one", choices=METHODS, help=argparse.SUPPRESS)
    ap.add_argument("--files", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        _one(args.one, Path(args.files[0]), Path(args.files[1]))
        return
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        ct, mask = make_volume(Path(tmp))
        print(
            f"volume {SHAPE[::-1]} (x, y, z) at {SPACING[::-1]} mm, {ct.stat().st_size / 2**20:.1f} MiB "
            f".nii.gz; torch threads {torch.get_num_threads()}, SimpleITK threads "
            f"{sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()}"
        )
        fns = pipelines(ct, mask)
        start = time.perf_counter()
        sitk.ReadImage(str(ct))
        read_s = time.perf_counter() - start
        times: dict[str, list[float]] = {m: [] for m in METHODS}
        centre: dict[str, float] = {}
        shapes: dict[str, tuple] = {}
        for m in METHODS:  # warm-up (lazy imports, first allocations)
            out = fns[m]()
            centre[m], shapes[m] = _centre_mean(out), tuple(np.asarray(out).shape[-3:])
        for _ in range(args.repeats):
            for m in METHODS:
                start = time.perf_counter()
                fns[m]()
                times[m].append(time.perf_counter() - start)
        memory: dict[str, float] = {}
        if args.memory:
            for m in METHODS:
                res = subprocess.run(
                    [sys.executable, __file__, "--one", m, "--files", str(ct), str(mask)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                memory[m] = json.loads(res.stdout.strip().splitlines()[-1])["peak_mib"]
        print(f"reading the .nii.gz alone (SimpleITK): {read_s:.2f} s")
        print("| pipeline | median s | runs (s) | output | centre mean | peak MiB |")
        print("|---|---|---|---|---|---|")
        for m in METHODS:
            runs = ", ".join(f"{t:.2f}" for t in times[m])
            mem = f"{memory[m]:.0f}" if m in memory else "-"
            print(
                f"| {m} | {statistics.median(times[m]):.2f} | {runs} | {shapes[m]} | "
                f"{centre[m]:.3f} | {mem} |"
            )


if __name__ == "__main__":
    main()
