"""What cohort validation finds: ``Problem`` lines and the per-case ``ValidationReport``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from deepradiomics.cohort.manifest import Case

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One finding. ``line`` is the CSV line of the case (None for cohort-wide findings)."""

    severity: Severity
    message: str
    case_id: str | None = None
    line: int | None = None
    column: str | None = None
    file: str | None = None  # the path as written in the CSV cell

    def __str__(self) -> str:
        where: list[str] = []
        if self.line is not None:
            case = f"case {self.case_id} (line {self.line})" if self.case_id else ""
            where.append(case or f"line {self.line}")
        if self.column:
            where.append(f"column {self.column}")
        if self.file:
            where.append(f"file {self.file}")
        prefix = ", ".join(where) or "cohort"
        return f"{self.severity}: {prefix}: {self.message}"


@dataclass
class ValidationReport:
    """Every problem of a cohort, cohort-wide ones (``line is None``) last."""

    problems: list[Problem] = field(default_factory=list)
    n_cases: int = 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """No errors at all (warnings allowed)."""
        return not self.errors

    @property
    def failed_lines(self) -> set[int]:
        """CSV lines of the cases that have at least one error of their own."""
        return {p.line for p in self.errors if p.line is not None}

    @property
    def cohort_errors(self) -> list[Problem]:
        """Errors about the cohort as a whole (not attributable to one case)."""
        return [p for p in self.errors if p.line is None]

    def for_line(self, line: int) -> list[Problem]:
        return [p for p in self.problems if p.line == line]

    def usable(self, cases: Iterable[Case]) -> list[Case]:
        """The cases without errors of their own (what ``predict`` can still process)."""
        failed = self.failed_lines
        return [c for c in cases if c.line not in failed]

    def summary(self) -> str:
        n_err, n_warn = len(self.errors), len(self.warnings)
        cases = f"{self.n_cases} case{'s' * (self.n_cases != 1)} checked"
        if not n_err and not n_warn:
            return f"summary: {cases}: no problems"
        failed = len(self.failed_lines)
        parts = [f"{n_err} error{'s' * (n_err != 1)}"]
        if failed:
            parts[0] += f" in {failed} case{'s' * (failed != 1)}"
        parts.append(f"{n_warn} warning{'s' * (n_warn != 1)}")
        return f"summary: {cases}: {', '.join(parts)}"

    def error_message(self, source: str, limit: int = 20) -> str:
        """Multi-line message listing the errors (at most ``limit``), for a ``UserError``."""
        errors = self.errors
        lines = [f"{source}: cohort has errors ({self.summary().removeprefix('summary: ')}):"]
        lines += [f"  {p}" for p in errors[:limit]]
        if len(errors) > limit:
            lines.append(
                f"  ... and {len(errors) - limit} more (run `deepradiomics validate` to list all)"
            )
        return "\n".join(lines)
