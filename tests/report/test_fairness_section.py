"""The report's fairness section, from a fabricated run whose audit ``audit.fairness`` wrote."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from deepradiomics.report import write_report
from tests.report.html_tables import as_rows, section, tables
from tests.report.run_builder import binary_run


def ci(entry: dict) -> str:
    return f"{entry['value']:.3f} [{entry['ci_low']:.3f}, {entry['ci_high']:.3f}]"


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    run = binary_run(tmp_path_factory.mktemp("fair") / "run")
    return run, write_report(run).read_text()


def test_tables_show_by_group_values_and_gaps(binary):
    run, page = binary
    fairness = json.loads((run / "metrics.json").read_text())["fairness"]
    part = section(page, "fairness")
    grids = tables(part)
    assert len(grids) == 6  # per column: by-group table and gaps table
    by_sex, gaps_sex = as_rows(grids[2]), as_rows(grids[3])
    audit = fairness["sex"]
    for group in ("F", "M"):
        row = by_sex[group]
        entry = audit["by_group"][group]
        assert row[0] == str(entry["n_patients"]) and row[3] == "yes"
        assert row[4] == ci(entry["auc"])
    assert by_sex["all"][4] == ci(audit["overall"]["auc"])
    assert gaps_sex["AUC"][0] == ci(audit["difference"]["auc"])
    assert gaps_sex["AUC"][1] == ci(audit["ratio"]["auc"])
    other = next(iter(audit["vs_reference"]))
    assert gaps_sex["header"][-1] == f"{other} − {audit['reference']}"
    assert gaps_sex["AUC"][-1] == ci(audit["vs_reference"][other]["auc"])
    eo = [k for k in gaps_sex if k.startswith("Equalised-odds")]
    assert eo and gaps_sex[eo[0]][0] == ci(audit["equalized_odds_difference"])


def test_small_group_listed_not_compared_and_named_a_limitation(binary):
    run, page = binary
    fairness = json.loads((run / "metrics.json").read_text())["fairness"]
    assert fairness["age_band"]["not_compared"] == ["<50"]
    by_band = as_rows(tables(section(page, "fairness"))[4])
    assert by_band["<50"][3] == "no (too small)"
    assert "age_band: group(s) &lt;50 too small to compare" in section(page, "limitations")


def test_forest_plot_has_a_panel_per_metric_and_a_row_per_group(binary):
    _, page = binary
    part = section(page, "fairness")
    assert part.count("<svg") == 1 and 'aria-label="fairness-forest"' in part
    svg = part[part.index("<svg") : part.index("</svg>")]
    assert len(re.findall(r'id="fairness-forest-axes_\d+"', svg)) == 6  # one per metric
    # one y tick per group: 3 sites + 2 sexes + 3 age bands, drawn once per panel
    assert len(re.findall(r'id="fairness-forest-ytick_\d+"', svg)) == 8 * 6


def test_no_fairness_key_no_section(binary, tmp_path):
    run, _ = binary
    import shutil

    dest = shutil.copytree(run, tmp_path / "run")
    metrics = json.loads((dest / "metrics.json").read_text())
    del metrics["fairness"]
    (dest / "metrics.json").write_text(json.dumps(metrics))
    assert 'id="fairness"' not in write_report(dest).read_text()
