"""Classical radiomics: hand-crafted features, ComBat harmonisation, scikit-learn baselines.

- ``features``: ``RadiomicsSettings``, ``extract_case`` (one case), ``extract_features``
  (a cohort, pooled and cached) with PyRadiomics.
- ``combat``: ``ComBat`` (fit/transform with site and covariates), ``ComBatColumns`` (its
  Pipeline step) and ``with_site_columns``.
- ``models``: ``make_baseline(task, combat, seed)`` and its parts.

Import from the submodules; this package imports nothing heavy on its own.
"""
