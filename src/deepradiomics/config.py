"""The experiment config tree: one YAML file, validated, saved resolved with every run.

Unknown keys and wrong types are errors that name the key (``train.epochs``). Paths in
the YAML are relative to the YAML file. Every section has defaults, so a config may be as
short as ``cohort: {path: cohort.csv}``.

Loading also preflights what would otherwise fail minutes later, after preprocessing: the
task is a registered one (``tasks``), the model name and its keywords fit the model registry,
a pretrained trunk's layout fits the model, the loss fits the task, augmentation settings
are in range, and a segmentation task has a model that segments, no covariates and (when the
cohort CSV is there) a mask column. (The pretrained file and its hash are checked when the model is built: ``predict``
loads the config without the file.)
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from deepradiomics.errors import UserError
from deepradiomics.models.pretrained import check_layout
from deepradiomics.models.registry import can_segment, check_model_kwargs
from deepradiomics.tasks import LOSSES, TASKS, get_task

ModalityKind = Literal["ct", "mr", "pet"]
Triple = tuple[float, float, float]


class Strict(BaseModel):
    """Base for every section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModalityConfig(Strict):
    """One image column and how its intensities are normalised.

    CT: ``window`` is a named window (see ``preprocess.normalise.CT_WINDOWS``), a
    ``[low, high]`` HU pair, or ``"percentile"`` (foreground 0.5-99.5 % from the
    fingerprint). MR: z-score inside the mask-dilated body (``zscore_region``). PET: SUV,
    clipped to ``[0, suv_max]`` and scaled to [0, 1]; ``suv`` says whether to convert DICOM
    counts to SUV (files already in SUV, e.g. NIfTI, are used as they are).
    """

    column: str
    kind: ModalityKind
    window: str | tuple[float, float] | None = None
    zscore_region: Literal["body", "mask", "volume"] = "body"
    suv_max: float = Field(20.0, gt=0)
    suv: bool = True


class CohortConfig(Strict):
    """Where the cohort is and what its columns mean.

    ``path`` is a CSV manifest (image paths relative to it) or a MedMNIST-style ``.npz``.
    Column names left at their defaults are optional (used when present); a column named
    explicitly must exist in the CSV.
    """

    path: Path | None = None
    case_id: str = "case_id"
    patient_id: str = "patient_id"
    modalities: dict[str, ModalityConfig] = Field(default_factory=dict)
    mask: str = "mask"
    task: str = "binary"  # a name in ``tasks.TASKS``
    target: str = "label"
    classes: list[str] | None = None
    time: str = "time"
    event: str = "event"
    site: str = "site"
    covariates_numeric: list[str] = Field(default_factory=list)
    covariates_categorical: list[str] = Field(default_factory=list)
    subgroups: list[str] = Field(default_factory=list)
    ground_truth: Path | None = None  # a synthetic cohort's ground_truth.csv: truth audit
    # a segmentation bundle (RUN/bundle of a segmentation run on whole volumes): rows without
    # a mask are segmented by it first, and those automatic masks are used like drawn ones
    mask_from: Path | None = None

    @field_validator("classes", mode="before")
    @classmethod
    def _classes_as_str(cls, v: Any) -> Any:
        return None if v is None else [str(c) for c in v]

    @field_validator("task")
    @classmethod
    def _registered_task(cls, v: str) -> str:
        if v not in TASKS:
            raise ValueError(f"unknown task {v!r}; one of {', '.join(TASKS)}")
        return v

    @property
    def is_npz(self) -> bool:
        return self.path is not None and self.path.suffix == ".npz"


class PreprocessConfig(Strict):
    """Resampling, cropping and caching. ``auto`` values come from the cohort plan."""

    spacing: Literal["auto"] | Triple = "auto"  # (z, y, x) mm
    crop_mm: Literal["auto", "none"] | Triple = "auto"  # physical crop size, (z, y, x) mm
    shape: Literal["auto"] | tuple[int, int, int] = "auto"  # output voxels (z, y, x)
    interpolation: Literal["linear", "bspline"] = "linear"
    cache_dir: Path | None = None  # default: <run>/cache or ~/.cache/deepradiomics
    workers: int = Field(2, ge=1)
    anisotropy_ratio: float = Field(3.0, gt=1)
    window_range: tuple[float, float] = (0.0, 1.0)  # CT windows and PET clips map onto this
    mask_channel: bool = (
        False  # the lesion mask as the last input channel (lesion_texture needs it)
    )


class PretrainedConfig(Strict):
    """Published trunk weights from a local file (``models.pretrained`` maps them).

    ``layout`` names whose key layout the file has: ``medicalnet`` (Chen et al. 2019, Med3D:
    ``resnet_10.pth`` ... ``resnet_50.pth``) or ``fmcib`` (Pai et al. 2024: the ResNet-50
    foundation model). ``sha256`` is the file's hash: the file is refused when it differs.
    ``freeze: true`` keeps the trunk fixed (a linear probe: only the heads train);
    ``false`` fine-tunes everything.
    """

    path: Path
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    layout: Literal["medicalnet", "fmcib"]
    freeze: bool = False


class ModelConfig(Strict):
    """A registered model (``models.list_models()``) and its builder's keywords; both are
    checked against the registry when the config is loaded."""

    name: str = "small3d"
    kwargs: dict[str, Any] = Field(default_factory=dict)
    pretrained: PretrainedConfig | None = None
    dropout: float = Field(0.3, ge=0, lt=1)
    # domain-adversarial training: a site classifier on the embedding behind gradient
    # reversal; the reversed gradient's weight ramps from 0 to adversary_weight (DANN schedule)
    site_adversary: bool = False
    adversary_weight: float = Field(1.0, ge=0)


class AugmentConfig(Strict):
    flip: bool = True
    rotate90: bool = True
    rotate_deg: float = Field(15.0, ge=0, le=180)
    scale: tuple[float, float] = (0.9, 1.1)
    affine_p: float = Field(1.0, ge=0, le=1)  # per-sample probability of rotation + zoom
    elastic_p: float = Field(0.0, ge=0, le=1)
    elastic_control_points: int = Field(7, ge=3)  # coarse grid per axis, borders fixed
    elastic_max_displacement_mm: float = Field(4.0, ge=0)
    intensity_scale: float = Field(0.1, ge=0, lt=1)  # factor 1 + U(-s, s) stays positive
    intensity_shift: float = Field(0.1, ge=0)
    gamma: float = Field(0.0, ge=0)
    noise_std: float = Field(0.0, ge=0)

    @field_validator("scale")
    @classmethod
    def _zoom_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if not 0 < lo <= hi:
            raise ValueError(f"must be [low, high] with 0 < low <= high, got [{lo}, {hi}]")
        return v

    @classmethod
    def off(cls) -> AugmentConfig:
        """No augmentation at all (the training cases exactly as stored)."""
        return cls(
            flip=False,
            rotate90=False,
            rotate_deg=0.0,
            scale=(1.0, 1.0),
            affine_p=0.0,
            elastic_p=0.0,
            intensity_scale=0.0,
            intensity_shift=0.0,
            gamma=0.0,
            noise_std=0.0,
        )


class TrainConfig(Strict):
    """The training loop. There is no ``num_workers``: the cohort is held in memory as tensors
    (or, above ``memory_budget_mb``, read from disk a batch at a time) and batches are indexed
    and augmented on the training device, so there is no data loader to parallelise;
    preprocessing has ``preprocess.workers``."""

    @model_validator(mode="before")
    @classmethod
    def _no_loader_workers(cls, data: Any) -> Any:
        if isinstance(data, dict) and "num_workers" in data:
            if data["num_workers"] not in (0, None):
                raise ValueError(
                    "num_workers was removed: training indexes batches from tensors in memory, "
                    "so there is no data loader to parallelise (preprocess.workers sets the "
                    "preprocessing processes)"
                )
            data = {k: v for k, v in data.items() if k != "num_workers"}  # old saved configs
        return data

    epochs: int = Field(40, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_epochs: int = Field(2, ge=0)
    loss: str | None = None  # None: the task's default (``tasks.Task.default_loss``)
    class_weight: Literal["balanced", "none"] | list[float] = "balanced"
    patience: int = Field(15, ge=1)
    # early stopping and best-epoch selection: the task's primary metric on validation
    # (``tasks.Task.primary_metric``) or the validation loss (smoother on small validation
    # sets); ``last``: a fixed schedule, every epoch runs and the last is kept (validation is
    # still recorded in the history), for validation sets too small to pick an epoch on
    monitor: Literal["score", "loss", "last"] = "score"
    # with ``monitor: last``, validate only every that many epochs (and at the last): the
    # record's resolution for less time; the weights do not depend on it
    validate_every: int = Field(1, ge=1)
    grad_clip: float = Field(1.0, gt=0)
    device: str = "auto"
    val_fraction: float = Field(0.2, gt=0, lt=1)
    # average each prediction over the input's flips (in-plane for anisotropic data); only
    # when ``augment.flip`` trains the model to be flip-invariant (``ExperimentConfig.flip_tta``)
    tta: bool = True
    # segmentation: train on random patches of this many voxels (z, y, x) of each input (half
    # of them on the lesion); validation and prediction slide a window of this size over the
    # whole input (MONAI sliding_window_inference). None: the whole input is the patch.
    patch: tuple[int, int, int] | None = None
    sw_overlap: float = Field(0.5, ge=0, lt=1)  # overlap of neighbouring sliding windows
    # under torchrun: batch-norm statistics over the global batch (SyncBatchNorm), so a
    # batch-norm model trains as it would in one process; false: each process its own share
    sync_batchnorm: bool = True
    # a CSV cohort whose stacked images exceed this is read from disk batch by batch
    # (``dataset.stored``) instead of held in memory
    memory_budget_mb: float = Field(4096.0, ge=0)

    @model_validator(mode="after")
    def _validate_every_needs_fixed_schedule(self) -> TrainConfig:
        if self.validate_every > 1 and self.monitor != "last":
            raise ValueError(
                f"validate_every: {self.validate_every} needs monitor: last (early stopping "
                f"on '{self.monitor}' compares every epoch's validation)"
            )
        return self


class LearningCurveConfig(Strict):
    enabled: bool = False
    fractions: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75, 1.0])
    repeats: int = Field(2, ge=1)


class AuditConfig(Strict):
    """The confounding audit of a run with two or more sites (``audit.site``)."""

    site: bool = True  # site probes (CNN embeddings, classical features, intensities), site-only
    permutations: int = Field(200, ge=0)  # of the site labels, for the probes' p-values
    # also run the other split scheme (k-fold <-> leave-one-site-out) on the same cohort and
    # report the paired difference of the headline metric: trains the CNN a second time
    loso_gap: bool = False


class FairnessConfig(Strict):
    """The subgroup audit (``cohort.subgroups`` and the site): groups under ``min_patients``
    patients or ``min_events`` events (binary: cases of the rarer outcome) are listed but
    left out of the between-group gaps."""

    min_patients: int = Field(30, ge=1)
    min_events: int = Field(10, ge=0)


class EvaluateConfig(Strict):
    split: Literal["kfold", "loso", "holdout", "official"] = "kfold"
    folds: int = Field(5, ge=2)
    test_fraction: float = Field(0.25, gt=0, lt=1)
    ensemble_members: int = Field(1, ge=1)
    bootstrap: int = Field(1000, ge=0)
    ci_level: float = Field(0.95, gt=0, lt=1)
    learning_curve: LearningCurveConfig = Field(default_factory=LearningCurveConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    classical: bool = True
    combat: bool = True
    # also fit ComBat (per fold, training cases only) on the CNN members' embeddings and a
    # tuned linear head on them: the "cnn_combat" model
    combat_embeddings: bool = False
    # Grad-CAM of a few true / false positives and false negatives, with the randomisation
    # sanity check (binary CSV cohorts): RUN/explain/ and metrics.json["explain"]
    explain: bool = True
    # binary decision threshold, chosen on the validation split: "youden" (max sensitivity +
    # specificity), "accuracy" (max accuracy) or a fixed probability
    threshold: Literal["youden", "accuracy"] | Annotated[float, Field(ge=0, le=1)] = "youden"
    fairness: FairnessConfig = Field(default_factory=FairnessConfig)
    # classical features and the CNN's prediction recomputed with every mask eroded and
    # dilated by one voxel (and the automatic mask where cohort.mask_from gives one):
    # per-feature ICC and the spread of the CNN's score (RUN/robustness/)
    mask_robustness: bool = False


class ExperimentConfig(Strict):
    name: str = "experiment"
    seed: int = Field(0, ge=0)  # every random stream derives from it (``seeds``)
    cohort: CohortConfig = Field(default_factory=CohortConfig)
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)

    @property
    def flip_tta(self) -> bool:
        """Test-time flips: ``train.tta`` when ``augment.flip`` is on. A label that depends on
        the side (left vs right kidney) is not flip-invariant: a config that does not flip in
        training does not average over flips at prediction either."""
        return self.train.tta and self.augment.flip

    @model_validator(mode="after")
    def _official_split_needs_npz(self) -> ExperimentConfig:
        if self.evaluate.split == "official" and not self.cohort.is_npz:
            raise ValueError("evaluate.split 'official' is only defined for .npz cohorts")
        return self

    @model_validator(mode="after")
    def _registered_model(self) -> ExperimentConfig:
        try:
            check_model_kwargs(self.model.name, self.model.kwargs)
        except UserError as err:  # it names the key: model.name / model.kwargs
            raise ValueError(str(err)) from None
        return self

    @model_validator(mode="after")
    def _pretrained_fits_model(self) -> ExperimentConfig:
        if self.model.pretrained is not None:
            try:
                check_layout(self.model.pretrained.layout, self.model.name)
            except UserError as err:  # it names the key: model.pretrained.layout
                raise ValueError(str(err)) from None
        return self

    @model_validator(mode="after")
    def _loss_fits_task(self) -> ExperimentConfig:
        loss = self.train.loss
        if loss is None:
            return self
        task = get_task(self.cohort.task)
        if loss not in LOSSES:
            raise ValueError(f"train.loss: unknown loss {loss!r}; one of {', '.join(LOSSES)}")
        if loss not in task.losses:
            raise ValueError(
                f"train.loss: {loss!r} does not fit a {task.name} task "
                f"(cohort.task); use one of {', '.join(task.losses)}"
            )
        return self

    @model_validator(mode="after")
    def _segmentation_fits(self) -> ExperimentConfig:
        """A dense task needs a model that segments, masks and no covariates; patches are
        only for dense tasks."""
        task = get_task(self.cohort.task)
        if task.dense and self.cohort.mask_from is not None:
            raise ValueError(
                f"cohort.mask_from: a {task.name} task trains on drawn masks; automatic "
                "masks are for the other tasks"
            )
        if self.cohort.mask_from is not None and self.cohort.is_npz:
            raise ValueError("cohort.mask_from: .npz cohorts have no masks to complete")
        if task.dense and self.evaluate.mask_robustness:
            raise ValueError(
                "evaluate.mask_robustness: it perturbs the masks an outcome model reads; a "
                f"{task.name} task predicts the masks"
            )
        if not task.dense:
            if self.train.patch is not None:
                raise ValueError(
                    f"train.patch: patches are for segmentation; a {task.name} task "
                    "(cohort.task) sees the whole input"
                )
            return self
        if not can_segment(self.model.name):
            raise ValueError(
                f"model.name: {self.model.name!r} cannot segment (cohort.task: {task.name}); "
                "use a U-Net ('unet')"
            )
        covariates = self.cohort.covariates_numeric + self.cohort.covariates_categorical
        if covariates:
            raise ValueError(
                f"cohort.covariates_numeric / covariates_categorical: a {task.name} model "
                f"takes no clinical covariates (got {', '.join(covariates)})"
            )
        if self.cohort.is_npz:
            raise ValueError(
                f"cohort.path: a {task.name} task needs a mask per case; .npz cohorts have none"
            )
        return self


def _csv_header(path: Path) -> list[str] | None:
    """The column names of a CSV file, or None when it cannot be read (validated later)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


def _check_mask_bundle(folder: Path, source: str) -> None:
    """``cohort.mask_from`` names a segmentation bundle that can segment a case without a
    mask (its plan does not crop around one)."""
    manifest, plan = folder / "bundle.json", folder / "plan.json"
    where = f"{source}: cohort.mask_from: {folder}"
    if not manifest.is_file() or not plan.is_file():
        raise UserError(f"{where}: not a bundle folder (RUN/bundle with bundle.json, plan.json)")
    try:
        task = json.loads(manifest.read_text()).get("task")
        crop = json.loads(plan.read_text()).get("crop_mm")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as err:
        raise UserError(f"{where}: unreadable bundle ({err})") from None
    if task not in TASKS or not TASKS[task].dense:
        raise UserError(f"{where}: a {task} bundle; masks come from a segmentation bundle")
    if crop is not None:
        raise UserError(
            f"{where}: the bundle crops around the mask (preprocess.crop_mm {crop}), so it "
            "cannot segment a case without one; train it with preprocess.crop_mm: none"
        )


def _preflight_files(cfg: ExperimentConfig, source: str) -> None:
    """Checks that need files: a segmentation cohort has its mask column, ``mask_from`` is
    a segmentation bundle for whole volumes."""
    if cfg.cohort.mask_from is not None:
        _check_mask_bundle(cfg.cohort.mask_from, source)
    path = cfg.cohort.path
    if not get_task(cfg.cohort.task).dense or path is None or not path.is_file():
        return
    header = _csv_header(path)
    if header is not None and cfg.cohort.mask not in header:
        raise UserError(
            f"{source}: cohort.mask: column {cfg.cohort.mask!r} not found in {path}; a "
            f"{cfg.cohort.task} task trains on a mask per case (columns: {', '.join(header)})"
        )


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        msg = msg.removeprefix("Value error, ")
        if not key:  # a check across sections names its keys in the message
            lines.append(f"{source}: {msg}")
        else:
            lines.append(f"{source}: {key}: {msg}")
    return "\n".join(lines)


def parse_config(
    data: dict[str, Any],
    source: str = "config",
    base_dir: Path | None = None,
    files: bool = True,
) -> ExperimentConfig:
    """Validate a config mapping; relative paths are resolved against ``base_dir``.
    ``files=False`` skips the checks that read the cohort and the mask bundle (a bundle's
    saved config is applied without them)."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: the top level must be a mapping of sections")
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as err:
        raise UserError(_format_errors(err, source)) from None
    if base_dir is not None:
        if cfg.cohort.path is not None and not cfg.cohort.path.is_absolute():
            cfg.cohort.path = (base_dir / cfg.cohort.path).resolve()
        if cfg.cohort.ground_truth is not None and not cfg.cohort.ground_truth.is_absolute():
            cfg.cohort.ground_truth = (base_dir / cfg.cohort.ground_truth).resolve()
        if cfg.cohort.mask_from is not None and not cfg.cohort.mask_from.is_absolute():
            cfg.cohort.mask_from = (base_dir / cfg.cohort.mask_from).resolve()
        if cfg.preprocess.cache_dir is not None and not cfg.preprocess.cache_dir.is_absolute():
            cfg.preprocess.cache_dir = (base_dir / cfg.preprocess.cache_dir).resolve()
        pretrained = cfg.model.pretrained
        if pretrained is not None and not pretrained.path.is_absolute():
            pretrained.path = (base_dir / pretrained.path).resolve()
    if files:
        _preflight_files(cfg, source)
    return cfg


def load_config(path: str | Path, files: bool = True) -> ExperimentConfig:
    """Read and validate an experiment YAML; errors name the file and the key (``files``:
    see ``parse_config``)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML: {err}") from None
    return parse_config(data, source=str(path), base_dir=path.parent.resolve(), files=files)


def config_to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """Plain, YAML/JSON-safe mapping (paths as strings, tuples as lists)."""
    return cfg.model_dump(mode="json")


def save_config(cfg: ExperimentConfig, path: str | Path) -> None:
    """Write the resolved config (every default filled in) as YAML."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
