"""Synthetic multi-site CT/PET cohort with a known outcome model: the embedded default.

``generate_cohort(out, cases, sites, seed, confounding, size, pet, workers)`` writes NIfTI
volumes, lesion masks, ``cohort.csv`` (what a user would have) and ``ground_truth.csv`` (what
only the simulator knows); ``deepradiomics synth`` is the same from the command line.
``draw_cohort`` gives the table of cases (sites, phenotypes, true risk, outcomes) without
rendering any image.

Generative model
================

Sites (``sites.py``). Site ``k`` of ``K`` has slice thickness ``round(1 + 4 k / (K - 1))`` mm
(1 to 5 mm; 2 mm for a single site), in-plane spacing U(0.8, 1.0) mm, a smooth (even ``k``)
or sharp (odd ``k``) reconstruction kernel, CT noise U(6, 18) HU, an HU calibration offset
U(-20, 20), a PET resolution (FWHM U(5, 8) mm), noise and calibration (x U(0.9, 1.1)), a share
of the patients ~ Dirichlet(5) (every site has at least one patient), and an outcome shift
``gamma_k``: the values evenly spaced in [-2.5, 2.5] logits, in random order.

Patients (``population.py``). Age ~ N(64, 10) clipped to 30..90, sex 50/50, age band
(<55, 55-64, 65-74, 75+). Lesion phenotype, independent of site and covariates:
diameter ~ logNormal(median 17 mm, sd 0.3) clipped to 8..32 mm, elongation U(1, 1.4),
lobulation, spiculation, heterogeneity, necrosis, core eccentricity and texture anisotropy
each U(0, 1), texture angle U(0, 180) degrees, PET uptake
``exp(log 5 + 0.3 z_size + 0.3 z_het + N(0, 0.2))`` SUV.

Outcome. With ``z`` the standardised phenotype (population mean 0, sd 1):

    eta = -0.4
          + 0.8 z_size + 0.6 z_irregularity + 0.5 z_heterogeneity + 0.4 z_necrosis   (eta_visible)
          + 0.9 z_core_eccentricity + 0.7 z_texture_anisotropy                        (eta_spatial)
          + 0.4 z_age + 0.3 (male - 0.5)                                             (eta_clinical)
          + confounding * gamma_site                                                 (eta_site)
    risk = sigmoid(eta);  label ~ Bernoulli(risk)
    survival: Weibull proportional hazards, shape 1.3, median 30 months at eta = -0.4,
    hazard multiplied by exp(eta + 0.4); censoring at min(U(24, 72), Exp(mean 150)) months.

``irregularity`` is the mean of lobulation and spiculation. ``eta_visible`` is what shape,
first-order and texture features can see (volume, sphericity, intensity spread, the share of
dark necrotic voxels). ``eta_spatial`` is carried only by the arrangement of the voxels: where
the necrotic core sits (central vs at the margin) and whether the texture is oriented stripes
or isotropic blobs; both leave the lesion's intensity histogram unchanged (see ``lesion.py``),
so first-order statistics cannot see them, while a CNN, or a purpose-built spatial statistic,
can. At ``confounding = 0`` site is independent of the outcome (and of the phenotype); at 1 a
site alone predicts the label with AUC ~0.8 (4 sites), so a model can learn the scanner (slice
thickness, noise texture, HU offset all identify the site) instead of the disease.

About 5 % of the cases are a second scan of an earlier patient: same patient id, site,
anatomy, lesion and outcome; new position (shift of a few mm) and new noise.

Images (``anatomy.py``, ``lesion.py``, ``scanner.py``). A thorax-abdomen body (air -1000 HU,
fat -100, soft tissue 40, heart 50, liver 50, lungs -850, vertebra 250 with an 800 HU cortex,
sternum and ribs) is rendered on a fine grid (1 mm along z, the site's pixel spacing in-plane),
the lesion is painted into the liver (viable tumour 90 HU + texture (sd 12-36 HU), necrotic
core 5 HU; PET: uptake x texture, core 0.5 SUV, background 0-2 SUV; a soft-tissue host keeps
partial volume at the lesion border from swamping its histogram, as a lung host would with
thick slices), then the site acquires it: CT slices average
``thickness`` fine slices (partial volume), the kernel blurs or edge-boosts, correlated noise,
HU offset, int16; PET is 2 x 2 coarser in-plane, blurred by the PSF, noisy, in SUV, in the same
physical space as the CT. The mask is the lesion (fine coverage >= 50 % per CT voxel).

Scale. Sizes in mm are for the reference ``size`` 96 (a ~86 x 86 x 96 mm field of view);
other sizes scale the scene (anatomy, lesion, texture, PET blur) by ``size / 96`` while the
voxel spacings stay as above, so small sizes are miniature phantoms for fast tests; the
spatial pattern is meant to be resolved at the default size.

Determinism. Everything derives from ``seed``: the case table from ``(seed, 0)``, the sites
from ``(seed, 1)``, each patient's anatomy and lesion from ``(seed, 2, patient)``, each scan's
position and noise from ``(seed, 3, case)``; the files do not depend on ``workers``.
"""

from deepradiomics.synth.generate import generate_cohort
from deepradiomics.synth.population import draw_cohort

__all__ = ["draw_cohort", "generate_cohort"]
