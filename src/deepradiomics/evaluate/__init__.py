"""Evaluation: patient-grouped splits (``splits``), metrics as plain functions (``metrics``),
patient-bootstrap confidence intervals (``bootstrap``), the per-task metric panel
(``panel``), paired comparisons incl. DeLong's test (``compare``) and ensembles
(``ensemble``)."""
