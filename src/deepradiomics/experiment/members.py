"""Training one ensemble member of one fold, resumably, and keeping its predictions.

A member's folder holds the trainer's checkpoint (so a killed run resumes mid-training)
and, once finished, ``predictions.npz`` (its outputs on the fold's train, early-stopping and
test cases) and ``done.json``: a rerun of the experiment reuses finished members as they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deepradiomics.config import ExperimentConfig
from deepradiomics.dataset.arrays import ArrayData, CohortArrays
from deepradiomics.evaluate.ensemble import member_resamples
from deepradiomics.files import atomic_write
from deepradiomics.models import build_from_config
from deepradiomics.seeds import derive_seed
from deepradiomics.tasks import get_task
from deepradiomics.train.loop import embed, fit, predict, resolve_device, setup_from_config

DONE = "done.json"
PREDICTIONS = "predictions.npz"


@dataclass(frozen=True)
class MemberJob:
    """Indices (into the cohort) a member trains on, stops early on, and is tested on."""

    fold: int
    member: int
    train: np.ndarray  # may repeat cases (bootstrap)
    stop: np.ndarray  # validation split, or the out-of-bag cases
    test: np.ndarray
    folder: Path
    # the backbone embedding of every case when the run uses it (site audit, ComBat on
    # embeddings); the learning curve's fits need none
    embed: bool = True


@dataclass(frozen=True)
class MemberOutput:
    train: np.ndarray
    stop: np.ndarray
    test: np.ndarray
    best_epoch: int
    seconds: float
    # [N cohort cases, F]: for combat_embeddings and the site and truth audits
    embedding: np.ndarray | None = None


def member_jobs(
    cfg: ExperimentConfig,
    arrays: CohortArrays,
    fold: int,
    train: np.ndarray,
    val: np.ndarray,
    test: np.ndarray,
    folder: Path,
) -> list[MemberJob]:
    """One job (train on train, stop on val), or M bootstrap members of the training part
    (train + val) that stop on their out-of-bag cases."""
    m = cfg.evaluate.ensemble_members
    if m == 1:
        return [MemberJob(fold, 0, train, val, test, folder / "member_0")]
    pool = np.sort(np.concatenate([train, val]))
    patients = np.asarray(arrays.data.patient_ids)[pool]
    samples = member_resamples(patients, m, seed=derive_seed(cfg.seed, "member_resample", fold))
    return [
        MemberJob(fold, i, pool[s.in_bag], pool[s.out_of_bag], test, folder / f"member_{i}")
        for i, s in enumerate(samples)
    ]


def member_model(
    cfg: ExperimentConfig,
    arrays: CohortArrays,
    fold: int,
    member: int,
    n_covariates: int,
    load_pretrained: bool = True,
) -> tuple[ExperimentConfig, torch.nn.Module]:
    """The member's config (its own derived seed) and its freshly built model."""
    cfg_m = cfg.model_copy(update={"seed": derive_seed(cfg.seed, "member", fold, member)})
    model = build_from_config(
        cfg_m,
        arrays.task,
        arrays.in_channels,
        arrays.n_classes,
        arrays.spacing,
        n_covariates=n_covariates,
        n_sites=len(arrays.site_names),
        load_pretrained=load_pretrained,
    )
    return cfg_m, model


def run_member(
    cfg: ExperimentConfig,
    arrays: CohortArrays,
    data: ArrayData,
    job: MemberJob,
    n_covariates: int,
    progress: bool = True,
) -> MemberOutput:
    """Train (or resume, or reuse) one member and return its predictions."""
    done = job.folder / DONE
    if done.is_file():
        info = json.loads(done.read_text())
        with np.load(job.folder / PREDICTIONS) as p:
            return MemberOutput(
                p["train"],
                p["stop"],
                p["test"],
                info["best_epoch"],
                info["seconds"],
                p["embedding"] if "embedding" in p else None,
            )
    job.folder.mkdir(parents=True, exist_ok=True)
    cfg_m, model = member_model(cfg, arrays, job.fold, job.member, n_covariates)
    setup = setup_from_config(
        cfg_m, arrays.task, arrays.n_classes, arrays.anisotropic, arrays.spacing
    )
    stop = data.subset(job.stop) if len(job.stop) else None
    result = fit(
        model, data.subset(job.train), stop, setup, job.folder, resume=True, progress=progress
    )
    device = resolve_device(cfg.train.device)

    def outputs(index: np.ndarray, tta: bool) -> np.ndarray:
        if not len(index):
            return np.zeros((0,), dtype=np.float32)
        return predict(
            model,
            data.subset(index),
            arrays.task,
            device,
            tta=tta,
            anisotropic=arrays.anisotropic,
            patch=cfg.train.patch,
            overlap=cfg.train.sw_overlap,
        )

    dense = get_task(arrays.task).dense
    # segmentation maps of the training cases would only cost memory: nothing reads them
    unique_train = np.unique(job.train)[: 0 if dense else None]
    wanted = (
        job.embed
        and not dense
        and (
            cfg.evaluate.combat_embeddings
            or (cfg.evaluate.audit.site and len(arrays.site_names) > 1)
            or cfg.cohort.ground_truth is not None  # the truth audit's phenotype probe
        )
    )
    embedding = embed(model, data, device) if wanted else None
    out = MemberOutput(
        outputs(unique_train, False),
        outputs(job.stop, cfg.flip_tta),
        outputs(job.test, cfg.flip_tta),
        result.best_epoch,
        result.seconds,
        embedding,
    )
    extra = {} if embedding is None else {"embedding": embedding}
    arrays_out = dict(
        train=out.train,
        stop=out.stop,
        test=out.test,
        train_index=unique_train,
        stop_index=job.stop,
        **extra,
    )
    atomic_write(job.folder / PREDICTIONS, lambda f: np.savez(f, **arrays_out))
    done.write_text(
        json.dumps(
            {
                "best_epoch": out.best_epoch,
                "seconds": round(out.seconds, 2),
                "epochs_run": result.epochs_run,
                "best_score": result.best_score,
            }
        )
    )
    return out
