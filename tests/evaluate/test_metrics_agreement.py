from __future__ import annotations

import numpy as np
import pytest

from deepradiomics.evaluate import metrics as M

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges; their ICC(2,1) is 0.29
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float
)


def test_icc_matches_shrout_and_fleiss():
    assert M.icc(SHROUT_FLEISS) == pytest.approx(0.2898, abs=5e-4)


def test_icc_columns_are_each_columns_icc_and_handle_degenerate_input():
    rng = np.random.default_rng(0)
    subject = rng.normal(size=(30, 1, 1))
    values = subject + rng.normal(scale=[[[0.1, 1.0, 10.0]]], size=(30, 3, 3))
    values[:, :, 2] = 5.0  # no variance at all
    out = M.icc_columns(values)
    assert out[0] == pytest.approx(M.icc(values[:, :, 0]))
    assert out[0] > 0.95 and 0.2 < out[1] < 0.8 and np.isnan(out[2])
    identical = np.repeat(rng.normal(size=(10, 1)), 3, axis=1)
    assert M.icc(identical) == pytest.approx(1.0)
    shifted = identical + np.array([0.0, 1.0, 2.0])  # a constant offset per condition
    assert M.icc(shifted) < 1.0  # absolute agreement penalises it
    with pytest.raises(ValueError, match="subjects >= 2, conditions >= 2"):
        M.icc(np.ones((1, 3)))
