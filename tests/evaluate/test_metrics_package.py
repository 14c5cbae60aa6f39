"""The metrics package: one module per task family, every public name re-exported."""

import importlib
import inspect

import pytest

from deepradiomics.evaluate import metrics as M

FAMILIES = ["core", "classification", "calibration", "regression", "survival", "segmentation"]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_public_name_of_a_family_is_reexported(family):
    module = importlib.import_module(f"deepradiomics.evaluate.metrics.{family}")
    public = {
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (
            name.isupper()
            or (inspect.isfunction(obj) or inspect.isclass(obj))
            and obj.__module__ == module.__name__
        )
    }
    assert public, family
    missing = sorted(public - set(M.__all__))
    assert not missing, f"{family} defines {missing} but the package does not export them"
    for name in public:
        assert getattr(M, name) is getattr(module, name)


def test_package_exports_exist():
    for name in M.__all__:
        assert hasattr(M, name), name
