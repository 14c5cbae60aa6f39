"""Every random stream of a run comes from ``seeds.derive_seed`` and no two coincide."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import deepradiomics
from deepradiomics.seeds import derive_seed, fraction_key, numpy_rng, torch_generator

SRC = Path(deepradiomics.__file__).parent
FRACTIONS = (0.25, 0.5, 0.75, 1.0)
FOLDS, MEMBERS, REPEATS, EPOCHS = 10, 3, 2, 40


def run_streams(seed: int) -> dict[tuple, int]:
    """Every stream a run with 10 folds x 3 members and a learning curve draws from, keyed by
    (run seed, stream, keys); a model's own streams (init, epochs) hang off its seed."""
    streams: dict[tuple, int] = {}

    def add(name: str, *keys: int) -> int:
        streams[(seed, name, *keys)] = value = derive_seed(seed, name, *keys)
        return value

    def model(model_seed: int, label: tuple) -> None:
        streams[(*label, "init")] = derive_seed(model_seed, "init")
        for e in range(EPOCHS):
            streams[(*label, "epoch", e)] = derive_seed(model_seed, "epoch", e)

    for name in ("outer_split", "bootstrap", "classical"):
        add(name)
    for fold in range(FOLDS):
        add("validation_split", fold)
        add("member_resample", fold)
        for member in range(MEMBERS):
            model(add("member", fold, member), (seed, "member", fold, member))
    for repeat in range(REPEATS):
        model(add("learning_curve_model", repeat), (seed, "learning_curve_model", repeat))
        for fraction in FRACTIONS:
            add("learning_curve_subset", repeat, fraction_key(fraction))
    return streams


def test_no_two_streams_of_two_runs_coincide() -> None:
    streams = {**run_streams(0), **run_streams(1)}
    values = list(streams.values())
    assert len(streams) == 2 * (
        3 + FOLDS * 2 + FOLDS * MEMBERS * (2 + EPOCHS) + REPEATS * (2 + EPOCHS + len(FRACTIONS))
    )
    assert len(set(values)) == len(values)


def test_the_old_collisions_are_gone() -> None:
    # fold 1 member 0 vs learning-curve repeat 0 at fraction 1.0 (both were seed*1000 + 100)
    assert derive_seed(0, "member", 1, 0) != derive_seed(
        0, "learning_curve_subset", 0, fraction_key(1.0)
    )
    # seed s fold 10 vs seed s + 1 fold 0 (both were (s + 1) * 1000)
    assert derive_seed(0, "member", 10, 0) != derive_seed(1, "member", 0, 0)
    assert derive_seed(0, "member_resample", 10) != derive_seed(1, "member_resample", 0)


def test_pure_function_of_its_inputs() -> None:
    assert derive_seed(3, "member", 2, 1) == derive_seed(3, "member", 2, 1)
    assert derive_seed(3, "member", 2, 1) != derive_seed(3, "member", 1, 2)
    assert derive_seed(3, "member", 2) != derive_seed(3, "member", 2, 0)
    assert derive_seed(3, "ab") != derive_seed(3, "ab\0")
    assert derive_seed(2**40, "x") != derive_seed(0, "x")  # no wrap at 32 bits
    value = derive_seed(7, "bootstrap")
    assert isinstance(value, int) and 0 <= value < 2**32
    # pinned: a change of the derivation changes every run's numbers, so it must be deliberate
    assert value == 1308753139


def test_generators_follow_the_seed() -> None:
    a = numpy_rng(1, "x", 2).integers(1 << 30, size=4)
    assert (a == numpy_rng(1, "x", 2).integers(1 << 30, size=4)).all()
    assert not (a == numpy_rng(1, "x", 3).integers(1 << 30, size=4)).all()
    t1 = torch.randperm(50, generator=torch_generator(1, "epoch", 0))
    t2 = torch.randperm(50, generator=torch_generator(1, "epoch", 0))
    assert torch.equal(t1, t2)


@pytest.mark.parametrize("bad", [(-1, "x", ()), (0, "", ()), (0, "x", (-2,)), (1.5, "x", ())])
def test_bad_inputs(bad) -> None:
    seed, name, keys = bad
    with pytest.raises(ValueError):
        derive_seed(seed, name, *keys)


def test_every_stream_in_the_code_is_enumerated() -> None:
    """The streams above are the ones the code derives (a new stream joins the test)."""
    used = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        used |= set(
            re.findall(r'(?:derive_seed|torch_generator|numpy_rng)\([^,]+,\s*"(\w+)"', text)
        )
    enumerated = {k[1] if isinstance(k[1], str) else None for k in run_streams(0)}
    enumerated |= {"init", "epoch"}
    assert used and used <= enumerated, used - enumerated
