"""What the report's explanation section holds, from ``metrics.json["explain"]`` and the
figures in ``RUN/explain/`` (written by ``experiment.explain_cases.explain_run``)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from deepradiomics.report.tables import Grid

REGIONS = ("lesion", "margin", "body", "outside")


def _pct(v: Any) -> str:
    return "" if v is None else f"{round(100 * float(v))} %"  # an int: never "-0 %"


def cases_grid(explain: dict[str, Any], method: str = "gradcam") -> Grid:
    """One row per explained case: group, probability, shares of positive attribution by
    region and, for a model that names its channels (``lesion_texture``), by kind (texture,
    intensity, soft levels)."""
    cases = explain.get("cases") or {}
    kinds = list(
        dict.fromkeys(
            k
            for info in cases.values()
            for k in ((info.get(method) or {}).get("composition") or {})
        )
    )
    rows = []
    for cid, info in cases.items():
        shares = info.get(method) or {}
        parts = shares.get("composition") or {}
        rows.append(
            [
                cid,
                info.get("group", ""),
                info.get("prob", ""),
                *(_pct(shares.get(r)) for r in REGIONS),
                "yes" if shares.get("flagged") else "",
                *(_pct(parts.get(k)) for k in kinds),
            ]
        )
    return Grid(
        [
            "case",
            "group",
            "CNN probability",
            "in lesion",
            "margin",
            "rest of body",
            "outside body",
            "flagged",
            *(f"map from {k}" for k in kinds),
        ],
        rows,
    )


def composition_line(explain: dict[str, Any], method: str = "gradcam") -> str:
    """What the table's "map from" columns mean (empty when no case has them)."""
    cases = (explain.get("cases") or {}).values()
    if not any((info.get(method) or {}).get("composition") for info in cases):
        return ""
    return (
        "Map from texture / intensity / levels: the share of each case's positive Grad-CAM "
        "map that each kind of the model's channels makes up (the oriented texture "
        "energies, the intensity maps, the soft intensity levels; over the members, each "
        "weighted by its map). The shares add up to 100 %; a negative one lowers the score "
        "where the map is positive."
    )


def field_grid(explain: dict[str, Any]) -> Grid:
    """Receptive field of each stage (mm) next to the crop and the median lesion."""
    rf = explain.get("receptive_field") or {}
    mm = lambda v: " x ".join(f"{float(a):g}" for a in v) if v else ""  # noqa: E731
    rows = [
        [f"stage {s['stage']} (stride {mm(s['stride'])})", mm(s["voxels"]), mm(s["mm"])]
        for s in rf.get("stages") or []
    ]
    rows.append(["crop", mm(rf.get("shape")), mm(rf.get("crop_mm")) or "whole volume"])
    if rf.get("lesion_median_mm"):
        rows.append(["median lesion (explained cases)", "", mm(rf["lesion_median_mm"])])
    return Grid(["", "voxels (z x y x x)", "mm (z x y x x)"], rows)


def sanity_lines(explain: dict[str, Any]) -> list[str]:
    out = []
    for method, s in (explain.get("sanity") or {}).items():
        verdict = "passed" if s.get("passed") else "FAILED"
        out.append(
            f"{method}: {verdict}. Median Spearman correlation between the trained model's "
            f"maps and those of the model with every layer re-initialised (top to bottom): "
            f"{s.get('final_spearman')}, SSIM {s.get('final_ssim')}; {s.get('rule')}."
        )
    return out


def localisation_line(explain: dict[str, Any], method: str = "gradcam") -> str:
    s = (explain.get("localisation") or {}).get(method) or {}
    if not s.get("cases"):
        return ""
    line = (
        f"Median share of positive {method} attribution over {s['cases']} cases: lesion "
        f"{_pct(s.get('lesion_median'))}, within {s.get('margin_mm')} mm around it "
        f"{_pct(s.get('margin_median'))}, rest of the body {_pct(s.get('body_median'))}, "
        f"outside the body {_pct(s.get('outside_median'))}."
    )
    if s.get("flagged_outside_body"):
        line += (
            f" {s['flagged_outside_body']} case(s) put most attribution outside the body "
            f"({s.get('flag_rule')}): a possible shortcut."
        )
    return line


def case_images(
    run_dir: Path, explain: dict[str, Any], method: str = "gradcam", limit: int = 6
) -> list[tuple[str, str]]:
    """``(caption, data URI)`` of the explained cases' PNG figures that exist."""
    out = []
    for cid, info in (explain.get("cases") or {}).items():
        nifti = (info.get(method) or {}).get("file")
        if not nifti:
            continue
        png = run_dir / "explain" / Path(str(nifti)).name.replace(".nii.gz", ".png")
        if png.is_file() and len(out) < limit:
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            out.append((f"{cid} ({info.get('group', '')})", f"data:image/png;base64,{data}"))
    return out
