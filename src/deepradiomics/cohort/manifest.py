"""The cohort manifest: a CSV of cases plus the column mapping of ``CohortConfig``.

``read_manifest`` resolves which columns play which role (explicitly named columns must
exist; default names are used only when present) and ``build_cases`` turns rows into
``Case`` records. Deep checks of files and values live in ``cohort.validate``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from deepradiomics.config import CohortConfig, ModalityConfig
from deepradiomics.errors import UserError
from deepradiomics.tasks import get_task

_MR_NAMES = re.compile(r"^(mr|mri|t1|t2|flair|adc|dwi|pd)([_\-].*|\d.*)?$", re.IGNORECASE)
_CT_NAMES = re.compile(r"^ct([_\-].*)?$", re.IGNORECASE)
_PET_NAMES = re.compile(r"^(pet|suv)([_\-].*)?$", re.IGNORECASE)


def infer_modalities(columns: list[str]) -> dict[str, ModalityConfig]:
    """Image columns recognised by name: ``ct*``, ``pet*``/``suv*``, ``mr*``/``t1``/``t2``/... ."""
    found: dict[str, ModalityConfig] = {}
    for col in columns:
        for pattern, kind in ((_CT_NAMES, "ct"), (_PET_NAMES, "pet"), (_MR_NAMES, "mr")):
            if pattern.match(col):
                found[col] = ModalityConfig(column=col, kind=kind)
                break
    return found


@dataclass(frozen=True)
class Columns:
    """Which CSV column plays which role; ``None`` means the role is absent."""

    case_id: str
    patient_id: str | None
    modalities: dict[str, ModalityConfig]
    mask: str | None
    target: str | None
    time: str | None
    event: str | None
    site: str | None
    covariates_numeric: list[str]
    covariates_categorical: list[str]
    subgroups: list[str]


@dataclass(frozen=True)
class Case:
    """One row of the manifest, typed. Paths are absolute; ``line`` is the CSV line number."""

    case_id: str
    patient_id: str
    images: dict[str, Path]
    mask: Path | None
    line: int
    label: str | None = None
    value: float | None = None
    time: float | None = None
    event: int | None = None
    site: str | None = None
    covariates: dict[str, float | str | None] = field(default_factory=dict)
    subgroups: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    path: Path
    table: pd.DataFrame  # every cell a string, "" when empty
    cohort: CohortConfig
    columns: Columns

    @property
    def root(self) -> Path:
        return self.path.parent

    def line_of(self, index: int) -> int:
        """CSV line number (header is line 1) of the row at ``index``."""
        return index + 2

    def resolve_path(self, cell: str) -> Path:
        p = Path(cell).expanduser()
        return p if p.is_absolute() else (self.root / p)


def _resolve_columns(
    cfg: CohortConfig, present: list[str], source: str, targets: bool = True
) -> Columns:
    explicit = cfg.model_fields_set
    missing: list[str] = []

    def role(name: str) -> str | None:
        col = getattr(cfg, name)
        if col in present:
            return col
        if name in explicit:
            missing.append(f"{name} -> '{col}'")
        return None

    modalities = dict(cfg.modalities) or infer_modalities(present)
    for name, mod in modalities.items():
        if mod.column not in present:
            missing.append(f"modalities.{name}.column -> '{mod.column}'")
    for group in ("covariates_numeric", "covariates_categorical", "subgroups"):
        for col in getattr(cfg, group):
            if col not in present:
                missing.append(f"{group} -> '{col}'")
    cols = Columns(
        case_id=cfg.case_id,
        patient_id=role("patient_id"),
        modalities=modalities,
        mask=role("mask"),
        target=role("target"),
        time=role("time"),
        event=role("event"),
        site=role("site"),
        covariates_numeric=list(cfg.covariates_numeric),
        covariates_categorical=list(cfg.covariates_categorical),
        subgroups=list(cfg.subgroups),
    )
    if cfg.case_id not in present:
        missing.insert(0, f"case_id -> '{cfg.case_id}'")
    if missing:
        raise UserError(
            f"{source}: columns named in the config are not in the CSV: {'; '.join(missing)} "
            f"(CSV columns: {', '.join(present)})"
        )
    if not modalities and not get_task(cfg.task).dense:
        raise UserError(
            f"{source}: no image column found; name them in cohort.modalities or call them "
            "ct / pet / mr_<sequence>"
        )
    needs = get_task(cfg.task).target_keys if targets else ()
    for name in needs:
        if getattr(cols, name) is None:
            raise UserError(
                f"{source}: task '{cfg.task}' needs a {name} column ('{getattr(cfg, name)}' is "
                f"not in the CSV; set cohort.{name})"
            )
    return cols


def read_manifest(
    path: str | Path, cfg: CohortConfig | None = None, targets: bool = True
) -> Manifest:
    """Read the CSV as strings and resolve column roles; raises ``UserError`` naming the file.

    ``targets=False`` (``predict``) does not require the task's outcome columns."""
    path = Path(path)
    cfg = cfg or CohortConfig(path=path)
    if not path.is_file():
        raise UserError(f"cohort file not found: {path}")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a readable CSV: {err}") from None
    return manifest_from_table(table, path, cfg, targets)


def manifest_from_table(
    table: pd.DataFrame, path: str | Path, cfg: CohortConfig | None = None, targets: bool = True
) -> Manifest:
    """A manifest from rows already in memory (the Python API's DataFrame of cases): every
    cell becomes a stripped string ("" when missing), as ``read_manifest`` reads a CSV.
    ``path`` names the table in messages and its folder resolves relative file paths."""
    path = Path(path)
    cfg = cfg or CohortConfig(path=path)
    table = table.reset_index(drop=True).astype(object).where(table.notna().to_numpy(), "")
    table = table.astype(str)
    table.columns = [str(c).strip() for c in table.columns]
    table = table.apply(lambda s: s.str.strip())
    cols = _resolve_columns(cfg, list(table.columns), str(path), targets)
    return Manifest(path=path.resolve(), table=table, cohort=cfg, columns=cols)


def with_masks(manifest: Manifest, masks: Mapping[str, Path]) -> Manifest:
    """The manifest with the mask cell of each case in ``masks`` (case id -> mask file) set;
    a cohort without a mask column gets one (named ``cohort.mask``)."""
    if not masks:
        return manifest
    table = manifest.table.copy()
    column = manifest.columns.mask or manifest.cohort.mask
    if column not in table.columns:
        table[column] = ""
    rows = table[manifest.columns.case_id].isin(list(masks))
    table.loc[rows, column] = table.loc[rows, manifest.columns.case_id].map(
        lambda cid: str(Path(masks[cid]).resolve())
    )
    return replace(manifest, table=table, columns=replace(manifest.columns, mask=column))


def _float_or_none(cell: str) -> float | None:
    try:
        v = float(cell)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def build_case(manifest: Manifest, index: int) -> Case:
    """Typed record of one row (no file checks; see ``cohort.validate``)."""
    row = manifest.table.iloc[index]
    c = manifest.columns
    get = lambda col: row[col] if col else ""  # noqa: E731
    event = _float_or_none(get(c.event))
    covariates: dict[str, float | str | None] = {
        col: _float_or_none(row[col]) for col in c.covariates_numeric
    }
    covariates.update({col: (row[col] or None) for col in c.covariates_categorical})
    return Case(
        case_id=row[c.case_id],
        patient_id=get(c.patient_id) or row[c.case_id],
        images={name: manifest.resolve_path(row[m.column]) for name, m in c.modalities.items()},
        mask=manifest.resolve_path(row[c.mask]) if c.mask and row[c.mask] else None,
        line=manifest.line_of(index),
        label=get(c.target) or None,
        value=_float_or_none(get(c.target)),
        time=_float_or_none(get(c.time)),
        event=None if event is None else int(event),
        site=get(c.site) or None,
        covariates=covariates,
        subgroups={col: (row[col] or None) for col in c.subgroups},
    )


def build_cases(manifest: Manifest) -> list[Case]:
    return [build_case(manifest, i) for i in range(len(manifest.table))]
