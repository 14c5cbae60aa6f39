"""Explanations: what a trained network looked at, in the case's own image space.

- ``gradcam``: Grad-CAM / Grad-CAM++ at a named layer (default: the last spatial stage).
- ``occlusion``: batched 3D occlusion sensitivity (gradient-free).
- ``geometry``: a map on the network-input grid carried back onto the original image grid.
- ``sanity``: cascading model-randomisation check (Adebayo et al. 2018).
- ``localisation``: shares of attribution in lesion / margin / body / outside.
- ``receptive_field``: theoretical and empirical receptive field per stage (voxels, mm).

``experiment.explain_cases`` runs them for ``deepradiomics explain`` and for ``run``.
"""
