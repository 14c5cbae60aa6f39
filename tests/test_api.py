"""The Python API: the README's example runs in a fresh interpreter, and importing the package
(or asking the CLI for help) does not import torch."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import deepradiomics
from deepradiomics.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(deepradiomics.__file__).resolve().parents[1]

# appended to the README example, in the same interpreter: what it produced is what the
# run wrote, and a DataFrame of cases predicts exactly as the same rows in a CSV
CHECKS = """
import json
m = json.loads((result.folder / "metrics.json").read_text())
assert result.metrics["test"] == m["test"] and m["models"]["cnn"]["test"]["auc"]["value"] >= 0
on_disk = pd.read_csv(result.folder / "predictions.csv", dtype={"case_id": str})
assert result.predictions["case_id"].tolist() == on_disk["case_id"].tolist() and len(on_disk) == 28
assert (result.predictions["cnn_prob"] == on_disk["cnn_prob"]).all()
assert result.report.is_file() and (result.bundle / "bundle.json").is_file()
assert preds["status"].tolist() == ["ok"] * 4 and preds["n_members"].tolist() == [2] * 4
new.to_csv(csv.parent / "new.csv", index=False)
from_csv = dr.predict(result.bundle, csv.parent / "new.csv")
pd.testing.assert_frame_equal(preds, from_csv)
print("API-CHECKS-OK")
"""


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- python-api-example.*?-->\s*```python\n(.*?)```", text, re.S)
    assert found, "README.md lost its Python API example"
    return found.group(1)


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


def test_readme_example_runs_in_a_fresh_interpreter(tmp_path: Path) -> None:
    done = _python(readme_example() + CHECKS, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "API-CHECKS-OK" in done.stdout
    metrics = json.loads((tmp_path / "tiny_run" / "metrics.json").read_text())
    assert f"'value': {metrics['test']['auc']['value']}" in done.stdout  # it printed the run's AUC


def test_import_and_help_do_not_import_torch(tmp_path: Path) -> None:
    code = (
        "import sys, deepradiomics as dr\n"
        "from deepradiomics.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH', 'torch' in sys.modules, sorted(dr.__all__))\n"
    )
    done = _python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert (
        "TORCH False ['RunResult', '__version__', 'load_config', 'predict', 'run']" in done.stdout
    )


def test_names_resolve_to_the_api() -> None:
    from deepradiomics import api

    assert deepradiomics.run is api.run and deepradiomics.predict is api.predict
    assert deepradiomics.load_config is api.load_config
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        deepradiomics.nope  # noqa: B018


def test_load_config_from_a_mapping_resolves_paths_against_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = deepradiomics.load_config({"cohort": {"path": "c/cohort.csv"}, "train": {"epochs": 3}})
    assert cfg.cohort.path == tmp_path / "c" / "cohort.csv" and cfg.train.epochs == 3
    assert deepradiomics.load_config(cfg) is cfg
    with pytest.raises(UserError, match="train.epochs"):
        deepradiomics.load_config({"train": {"epochs": "ten"}})


def test_run_result_paths(tmp_path: Path) -> None:
    from deepradiomics.api import RunResult

    r = RunResult(tmp_path, {"test": {"auc": {"value": 0.75}}}, pd.DataFrame({"case_id": ["a"]}))
    assert r.report == tmp_path / "report.html" and r.bundle == tmp_path / "bundle"
    assert "auc 0.750" in repr(r) and "1 cases" in repr(r)
