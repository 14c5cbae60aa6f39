"""What AUC a score reaches if it knows parts of the true risk (20,000 draws of the demo cohort's
table, no images): the ceiling the demo targets sit under.

    PYTHONPATH=src python bench/cnn_investigation/ceiling.py
"""

import numpy as np
from sklearn.metrics import roc_auc_score

from deepradiomics.synth.population import COEF, _z_uniform, draw_cohort

_, t = draw_cohort(20000, 4, 0, 0.3)
y = t.label.to_numpy()
rng = np.random.default_rng(0)


def auc(s):
    return roc_auc_score(y, s)


print("oracle", auc(t.eta))
vis, spa, cli, site = t.eta_visible, t.eta_spatial, t.eta_clinical, t.eta_site
print("visible+clinical+site", auc(vis + cli + site))
print("visible+clinical", auc(vis + cli))
print("image (vis+spa)", auc(vis + spa))
za = _z_uniform(t.texture_anisotropy.to_numpy())
ze = _z_uniform(t.core_eccentricity.to_numpy())


def noisy(z, r):  # an estimate correlating r with z
    return r * z + np.sqrt(1 - r**2) * rng.normal(size=len(z))


for ra, re in [(0.46, 0.39), (0.6, 0.6), (0.8, 0.8), (1, 1)]:
    s = (
        vis
        + cli
        + site
        + COEF["texture_anisotropy"] * ra * noisy(za, ra) / 1
        + COEF["core_eccentricity"] * re * noisy(ze, re)
    )
    print(f"vis+cli+site + spatial est r=({ra},{re})", round(auc(s), 3))
# visible part estimated imperfectly, e.g. r=0.8 with eta_visible
sd = vis.std()
for rv in (0.7, 0.8, 0.9):
    v = rv * vis + np.sqrt(1 - rv**2) * sd * rng.normal(size=len(vis))
    print(
        f"visible r={rv} + cli+site:",
        round(auc(v + cli + site), 3),
        " + spatial(0.6,0.6):",
        round(auc(v + cli + site + 0.7 * 0.6 * noisy(za, 0.6) + 0.9 * 0.6 * noisy(ze, 0.6)), 3),
    )
