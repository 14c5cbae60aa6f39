"""deepradiomics: end-to-end deep-learning radiomics with honest, site-aware validation."""

__version__ = "0.1.0"
