"""report: the run's self-contained HTML report and its model card, from the run folder's files.

- ``write_report(run_dir)`` -> ``RUN/report.html`` (``report.html``)
- ``write_model_card(run_dir)`` -> ``RUN/model_card.md`` (``report.model_card``)
- ``write_checklist(run_dir)`` -> ``RUN/checklist.md``: TRIPOD+AI and METRICS as far as the
  run knows them (``report.checklist``)

Both read only config.yaml, cohort.json, splits.csv, predictions.csv and metrics.json
(see ``report.run_files``).
"""

from deepradiomics.report.html import write_report
from deepradiomics.report.model_card import write_checklist, write_model_card

__all__ = ["write_checklist", "write_model_card", "write_report"]
