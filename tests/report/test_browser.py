"""report.html in a real browser: headless Chromium loads it with no console error and no
network request, every figure renders, and a full-page screenshot is saved.

Skips where no Chromium is installed (``.ci/run`` installs the Debian package).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from deepradiomics.report import write_report
from tests.report.browser import FIGURE_CHECKS, find_browser, open_page
from tests.report.run_builder import binary_run

pytestmark = [
    pytest.mark.skipif(
        find_browser() is None, reason="no Chromium on this machine (apt-get install chromium)"
    ),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
pytest.importorskip("websocket", reason="websocket-client (test extra) absent")

CHECKS = {
    **FIGURE_CHECKS,
    "sections": "document.querySelectorAll('section').length",
    "overflow": "document.documentElement.scrollWidth - window.innerWidth",
    "height": "document.documentElement.scrollHeight",
}


def _png(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    return imread(path)


def test_report_opens_cleanly_offline(tmp_path: Path):
    run = binary_run(tmp_path / "run")
    report = write_report(run)
    page = report.read_text()
    shot = tmp_path / "report.png"
    record = open_page(report, shot, CHECKS)
    if keep := os.environ.get("DEEPRADIOMICS_SCREENSHOTS"):
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")
    assert record.errors == []
    assert record.foreign_requests == []
    assert record.requests == [report.resolve().as_uri()]
    assert record.values["svgs"] == page.count("<svg") >= 6
    assert record.values["svgs_drawn"] == record.values["svgs"]  # every figure laid out
    assert record.values["sections"] == page.count("<section")
    assert record.values["overflow"] <= 0  # nothing wider than a 1280 px window
    image = _png(shot)
    assert 1200 <= image.shape[1] <= 1280  # the window less any scrollbar
    assert image.shape[0] == record.values["height"] > 3000
    assert image[..., :3].std() > 0.05  # not a blank page


PIXEL = (  # a 1 x 1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def test_the_harness_catches_errors_and_requests(tmp_path: Path):
    """The checks above can fail: a console error, an exception and a request are seen; an
    inline (data:) image is part of the page, not a request elsewhere."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><p>x</p>"
        "<img src='http://127.0.0.1:9/pixel.png' alt=''>"
        f"<img src='data:image/png;base64,{PIXEL}' alt=''>"
        "<script>console.error('boom'); undefined_function();</script></body></html>"
    )
    record = open_page(bad, tmp_path / "bad.png")
    assert "boom" in record.errors
    assert any("undefined_function" in e or "Uncaught" in e for e in record.errors)
    assert record.foreign_requests == ["http://127.0.0.1:9/pixel.png"]
