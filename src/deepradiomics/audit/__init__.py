"""Audits of a run: what a model learned (synthetic truth), confounding, fairness."""
