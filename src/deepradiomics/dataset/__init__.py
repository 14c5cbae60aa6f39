"""The data layer, between ``preprocess`` and ``train``: cohorts as tensors.

- ``arrays``: ``ArrayData`` (images, targets, covariates, sites, masks aligned by row: the
  training loop's only view of the data) and ``CohortArrays`` (every case of a cohort plus
  what models and splits need);
- ``load``: ``load_cohort_arrays`` from a config: a CSV cohort (``manifest``: validated,
  preprocessed into the cache, stacked) or a MedMNIST-style ``.npz`` (``npz``);
- ``planning``: splits come first (``load.open_cohort`` fingerprints without planning), then
  each fold's cohort is prepared under the plan fitted on its training part only;
- ``covariates``: clinical covariates encoded from a fold's training cases only;
- ``splits``: the one ``splits.csv`` writer, and one model's train / val / test parts.
"""
