"""Forward + backward time per case of ``lesion_texture`` on this CPU (issue 10, section 6).

    PYTHONPATH=src python bench/cnn_investigation/texture_speed.py [THREADS]

Batch of 32 crops of 3 x 16 x 40 x 40 (CT, PET, mask), the demo's shape, for a few settings
and the demo's own (``demo.yaml``); the last of 5 repeats is printed.
"""

import sys
import time
from importlib import resources

import torch
import yaml

from deepradiomics.models import create_model

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
x = torch.rand(32, 3, 16, 40, 40)
x[:, -1] = 0
x[:, -1, 4:12, 12:28, 12:28] = 1
demo = yaml.safe_load(
    resources.files("deepradiomics.experiment").joinpath("demo.yaml").read_text()
)["model"]["kwargs"]
settings = [{}, {"z_slices": 8}, {"z_slices": 8, "kernel": 7}, {"z_slices": 8, "rotations": 4}]
for kw in [*settings, demo]:
    m = create_model(
        "lesion_texture", task="binary", in_channels=3, **{"texture_channels": 1, **kw}
    )
    for _ in range(5):
        t = time.perf_counter()
        m(x)["out"].sum().backward()
        dt = time.perf_counter() - t
    print("demo.yaml" if kw is demo else kw, f"{dt / 32 * 1000:.1f} ms/case, {dt:.3f} s/batch")
