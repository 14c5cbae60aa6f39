"""Every loss in one place: classification (BCE/CE with class weights, focal), regression
(MSE), segmentation (MONAI Dice, Dice+CE, Dice+Focal) and survival (Cox partial likelihood,
Efron or Breslow ties). ``get_loss(name, task)`` picks one, or the task's default."""

from deepradiomics.losses.classification import (
    FocalLoss,
    WeightedBCELoss,
    WeightedCELoss,
    balanced_class_weights,
)
from deepradiomics.losses.factory import get_loss
from deepradiomics.losses.regression import MSELoss
from deepradiomics.losses.survival import CoxLoss, cox_partial_nll

__all__ = [
    "CoxLoss",
    "FocalLoss",
    "MSELoss",
    "WeightedBCELoss",
    "WeightedCELoss",
    "balanced_class_weights",
    "cox_partial_nll",
    "get_loss",
]
