"""checklist.md and the report's checklist section: what a run fills in, and what it leaves."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from deepradiomics.experiment.provenance import code_commit, software_versions
from deepradiomics.report import write_checklist, write_report
from deepradiomics.report.checklist import AUTHORS, METRICS_TOOL, TRIPOD, checklists
from deepradiomics.report.run_files import load_run
from tests.report.html_tables import section, tables
from tests.report.run_builder import binary_run

SOFTWARE = {
    "python": "3.11.9",
    "platform": "Linux",
    "deepradiomics": "0.1.0",
    "packages": {"torch": "2.13.0", "numpy": "2.1.0"},
    "git": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = binary_run(tmp_path_factory.mktemp("checklist") / "run")
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["software"] = SOFTWARE
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


def answers(run: Path) -> dict[str, dict[str, str]]:
    return {
        name: {a.item: a.answer for a in items} for name, items in checklists(load_run(run)).items()
    }


def test_every_item_of_both_checklists_is_listed(run):
    got = answers(run)
    tripod = list(got[TRIPOD])
    assert tripod[:3] == ["1", "2", "3a"] and tripod[-1] == "27c" and len(tripod) == 52
    assert {str(i) for i in range(1, 28)} <= {i.rstrip("abcdefg") for i in tripod}
    metrics = list(got[METRICS_TOOL])
    assert [i for i in metrics if i.startswith("C")] == ["C1", "C2", "C3", "C4", "C5"]
    assert [int(i) for i in metrics if not i.startswith("C")] == list(range(1, 31))


def test_what_the_run_knows_is_filled_and_the_rest_left_to_the_authors(run):
    got = answers(run)
    tripod, metrics = got[TRIPOD], got[METRICS_TOOL]
    for item in ("17", "18a", "19", "25", "3c"):
        assert tripod[item] == AUTHORS
    assert tripod["18f"].startswith("deepradiomics 0.1.0, Python 3.11.9; torch 2.13.0")
    assert "git commit 0123456789abcdef0123456789abcdef01234567" in tripod["18f"]
    assert tripod["18f"].endswith(AUTHORS)  # where the code is shared: the authors say
    assert "5-fold cross-validation" in tripod["12a"]
    assert tripod["23a"].startswith("Pooled AUC 0.941 [0.890, 0.992]")
    assert "(sex, age_band, site)" in tripod["23a"] or "(site, sex, age_band)" in tripod["23a"]
    assert tripod["14"].startswith("Subgroup audit over site, sex, age_band")
    assert (
        tripod["15"].startswith("A probability of the positive class") and "(0.42)" in tripod["15"]
    )
    assert tripod["13"].startswith("Class weights 'balanced'")
    assert "age 3, sex 0" in tripod["11"]
    assert metrics["4"] == "Yes: 3 sites."
    assert metrics["27"] == "No external testing in this run."
    assert metrics["25"].startswith("Classical radiomics baseline")
    assert metrics["2"] == AUTHORS and metrics["28"] == AUTHORS


def test_checklist_file_and_report_section(run):
    text = write_checklist(run).read_text()
    assert text.startswith("# Reporting checklists: demo-binary")
    assert f"## {TRIPOD}" in text and f"## {METRICS_TOOL}" in text
    assert (
        "| 17 | Ethical approval | Ethics committee approval, consent | " + AUTHORS + " |" in text
    )
    page = write_report(run).read_text()
    part = section(page, "checklist")
    grids = tables(part)
    assert [len(g) - 1 for g in grids] == [52, 35]  # rows under each header
    assert "0123456789abcdef" in part and 'href="#checklist"' in page


def test_run_without_recorded_software_says_so(tmp_path):
    run = binary_run(tmp_path / "run")
    assert answers(run)[TRIPOD]["18f"].startswith("Software versions were not recorded")


def test_provenance_reads_the_commit_and_the_dirty_flag(tmp_path):
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(tmp_path), *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    assert code_commit(tmp_path) is None  # not a repository
    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "one")
    assert code_commit(tmp_path) == {"commit": git("rev-parse", "HEAD"), "dirty": False}
    (tmp_path / "a.py").write_text("x = 2\n")
    assert code_commit(tmp_path)["dirty"] is True
    versions = software_versions()
    assert versions["packages"]["torch"].startswith("2.13.0")
    assert versions["deepradiomics"]
