"""Explanations: what a trained network looked at, in the case's own image space.

- ``receptive_field``: theoretical (and empirical) receptive field of every stage, in voxels
  and millimetres per axis.
"""
