import dataclasses
import os
import shutil
import time

import numpy as np
import pytest

from deepradiomics.config import ModalityConfig, PreprocessConfig
from deepradiomics.errors import UserError
from deepradiomics.preprocess import pipeline
from deepradiomics.preprocess.cache import CaseCache, case_key, content_digest
from deepradiomics.preprocess.case import apply_plan
from deepradiomics.preprocess.pipeline import PreparedCohort, prepare_cohort
from tests.preprocess.conftest import CT, ct_case, make_image, write

CFG = PreprocessConfig(spacing=(1.0, 1.0, 1.0), crop_mm=(16.0, 16.0, 16.0))


def _cohort(root, n=3):
    return [
        dataclasses.replace(ct_case(root, f"c{i}", centre=(10 + i, 12, 12 - i), seed=i), line=i + 2)
        for i in range(n)
    ]


def _count(monkeypatch, name):
    calls = []
    real = getattr(pipeline, name)

    def counted(*args, **kwargs):
        calls.append(args[0].case_id)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, name, counted)
    return calls


def _run(cases, cache, cfg=CFG, **kw):
    return prepare_cohort(cases, CT, cfg, cache, workers=1, progress=False, **kw)


def test_content_digest_follows_bytes_not_names_or_times(tmp_path):
    case = ct_case(tmp_path / "a", "c0")
    d0 = content_digest(case, ["ct"])
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    moved = dataclasses.replace(
        case, images={"ct": tmp_path / "b/c0/ct.nii.gz"}, mask=tmp_path / "b/c0/mask.nii.gz"
    )
    os.utime(moved.images["ct"], (1, 1))
    assert content_digest(moved, ["ct"]) == d0
    data = bytearray(moved.images["ct"].read_bytes())
    data[-1] ^= 0xFF
    moved.images["ct"].write_bytes(bytes(data))
    assert content_digest(moved, ["ct"]) != d0
    assert content_digest(dataclasses.replace(case, mask=None), ["ct"]) != d0
    with pytest.raises(UserError, match="no image for modality pet"):
        content_digest(case, ["ct", "pet"])


def test_content_digest_of_a_dicom_folder(tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i:03d}.dcm").write_bytes(bytes([i]) * 100)
    case = dataclasses.replace(ct_case(tmp_path, "c0", mask=False), images={"ct": folder})
    d0 = content_digest(case, ["ct"])
    (folder / "001.dcm").write_bytes(b"\x09" * 100)
    assert content_digest(case, ["ct"]) != d0
    (folder / "001.dcm").write_bytes(b"\x01" * 100)
    assert content_digest(case, ["ct"]) == d0


def test_second_run_reads_from_the_cache(tmp_path, monkeypatch):
    cases = _cohort(tmp_path)
    first = _run(cases, tmp_path / "cache")
    assert first.computed == 3 and first.reused == 0 and not first.failures
    files = sorted((tmp_path / "cache" / "cases").glob("*.npz"))
    assert len(files) == 3
    mtimes = [f.stat().st_mtime_ns for f in files]
    prepared_calls = _count(monkeypatch, "apply_plan")
    fingerprint_calls = _count(monkeypatch, "fingerprint_case")
    second = _run(cases, tmp_path / "cache")
    assert prepared_calls == [] and fingerprint_calls == []
    assert second.computed == 0 and second.reused == 3
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    assert second.keys == first.keys and second.plan == first.plan


def test_config_or_content_change_invalidates(tmp_path, monkeypatch):
    cases = _cohort(tmp_path)
    first = _run(cases, tmp_path / "cache")
    calls = _count(monkeypatch, "apply_plan")
    lung = {"ct": ModalityConfig(column="ct", kind="ct", window="lung")}
    other = prepare_cohort(cases, lung, CFG, tmp_path / "cache", workers=1, progress=False)
    assert sorted(calls) == ["c0", "c1", "c2"] and other.computed == 3
    assert set(other.keys.values()).isdisjoint(first.keys.values())
    calls.clear()
    spacing = _run(
        cases, tmp_path / "cache", PreprocessConfig(spacing=(2.0, 2.0, 2.0), crop_mm=(16.0,) * 3)
    )
    assert spacing.computed == 3
    # new bytes in one file: only that case is fingerprinted and prepared again
    calls.clear()
    fp_calls = _count(monkeypatch, "fingerprint_case")
    ct_case(tmp_path, "c1", centre=(11, 12, 11), seed=1, tumour_hu=80.0)
    again = _run(cases, tmp_path / "cache")
    assert calls == ["c1"] and fp_calls == ["c1"]
    assert again.keys["c1"] != first.keys["c1"] and again.keys["c0"] == first.keys["c0"]


def test_leftover_temp_files_are_ignored_and_swept(tmp_path):
    cases = _cohort(tmp_path, n=1)
    first = _run(cases, tmp_path / "cache")
    key = first.keys["c0"]
    cache = CaseCache(tmp_path / "cache")
    cache.case_path(key).unlink()  # as if the run had been killed while writing this case
    stale = cache.case_path(key).with_name(f".{key}.npz.4242.deadbeef.tmp")
    stale.write_bytes(b"PK\x03\x04 half a zip")
    fresh = stale.with_name(f".{key}.npz.4243.cafecafe.tmp")
    fresh.write_bytes(b"in use by another run")
    old = time.time() - 2 * 86400
    os.utime(stale, (old, old))
    again = _run(cases, tmp_path / "cache")
    assert again.computed == 1 and again.keys == first.keys
    image, mask, meta = again.load_case("c0")
    assert image.shape == (1, 16, 16, 16) and meta["case_id"] == "c0"
    assert not stale.exists() and fresh.exists()  # old leftovers swept, recent ones kept


def test_failing_cases_are_reported_and_the_rest_finish(tmp_path, monkeypatch):
    good = _cohort(tmp_path, n=2)
    missing = dataclasses.replace(
        good[0], case_id="missing", line=10, images={"ct": tmp_path / "nope.nii.gz"}
    )
    (tmp_path / "junk.nii.gz").write_bytes(b"not an image at all")
    corrupt = dataclasses.replace(
        good[0], case_id="corrupt", line=11, images={"ct": tmp_path / "junk.nii.gz"}
    )
    empty_mask = write(make_image(np.zeros((24, 24, 24), np.uint8)), tmp_path / "empty.nii.gz")
    empty = dataclasses.replace(good[1], case_id="empty", line=12, mask=empty_mask)
    no_mask = dataclasses.replace(good[1], case_id="nomask", line=13, mask=None)
    real = pipeline.apply_plan

    def flaky(case, plan):
        if case.case_id == "c1":
            raise RuntimeError("simulated library crash")
        return real(case, plan)

    monkeypatch.setattr(pipeline, "apply_plan", flaky)
    out = _run([good[0], missing, corrupt, good[1], empty, no_mask], tmp_path / "cache")
    assert out.case_ids == ["c0"]
    reasons = {f.case_id: (f.stage, f.reason) for f in out.failures}
    assert [f.line for f in out.failures] == sorted(f.line for f in out.failures)
    assert reasons["missing"][0] == "fingerprint" and "file not found" in reasons["missing"][1]
    assert reasons["corrupt"][0] == "fingerprint" and "cannot read image" in reasons["corrupt"][1]
    assert reasons["empty"] == ("preprocess", "case empty: the mask is empty (no non-zero voxel)")
    assert reasons["nomask"][0] == "preprocess" and "no mask" in reasons["nomask"][1]
    assert reasons["c1"] == ("preprocess", "RuntimeError: simulated library crash")
    crash = next(f for f in out.failures if f.case_id == "c1")
    assert "Traceback" in crash.detail
    assert "case missing (line 10): fingerprint:" in str(
        next(f for f in out.failures if f.case_id == "missing")
    )
    # the finished case is in the cache: a rerun after fixing c1 computes only c1
    monkeypatch.setattr(pipeline, "apply_plan", real)
    rerun = _run([good[0], good[1]], tmp_path / "cache")
    assert rerun.case_ids == ["c0", "c1"] and rerun.reused == 1 and rerun.computed == 1


def test_duplicate_case_ids_are_an_error(tmp_path):
    cases = _cohort(tmp_path, n=1)
    with pytest.raises(UserError, match="case_id 'c0' appears twice"):
        _run(cases + cases, tmp_path / "cache")


def test_load_all_open_and_apply_plan_agree(tmp_path):
    cases = _cohort(tmp_path)
    prepared = _run(cases, tmp_path / "cache")
    prepared.save(tmp_path / "out")
    reopened = PreparedCohort.open(tmp_path / "out")
    assert reopened.plan == prepared.plan and reopened.keys == prepared.keys
    images, masks, ids = reopened.load_all()
    assert images.shape == (3, 1, 16, 16, 16) and images.dtype == np.float32
    assert masks.shape == (3, 16, 16, 16) and masks.dtype == np.uint8 and ids == ["c0", "c1", "c2"]
    # predict path: the saved plan applied to a case gives the cached arrays exactly
    direct = apply_plan(cases[1], reopened.plan)
    np.testing.assert_array_equal(direct.image, images[1])
    np.testing.assert_array_equal(direct.mask, masks[1])
    assert reopened.meta("c1")["shape"] == [16, 16, 16]
    assert case_key(content_digest(cases[1], ["ct"]), reopened.plan) == reopened.keys["c1"]


def test_parallel_run_matches_serial(tmp_path):
    cases = _cohort(tmp_path, n=4)
    serial = _run(cases, tmp_path / "serial")
    parallel = prepare_cohort(cases, CT, CFG, tmp_path / "parallel", workers=2, progress=False)
    assert parallel.keys == serial.keys and parallel.computed == 4 and not parallel.failures
    a, _, _ = serial.load_all()
    b, _, _ = parallel.load_all()
    np.testing.assert_array_equal(a, b)
