"""deepradiomics: end-to-end deep-learning radiomics with honest, site-aware validation.

The Python API (``deepradiomics.api``), for notebooks and scripts::

    import deepradiomics as dr

    cfg = dr.load_config("experiment.yaml")        # or a dict of the same sections
    result = dr.run(cfg, "runs/first")             # RunResult: metrics, predictions, paths
    preds = dr.predict(result.bundle, "new.csv")   # or a DataFrame of new cases

The names are imported on first use (PEP 562), so ``import deepradiomics`` and
``deepradiomics --help`` stay fast and do not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["RunResult", "__version__", "load_config", "predict", "run"]

if TYPE_CHECKING:
    from deepradiomics.api import RunResult, load_config, predict, run


def __getattr__(name: str) -> Any:
    if name in ("RunResult", "load_config", "predict", "run"):
        return getattr(importlib.import_module("deepradiomics.api"), name)
    raise AttributeError(f"module 'deepradiomics' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
