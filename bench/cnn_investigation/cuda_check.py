"""CUDA path of lesion_texture: forward/backward under bf16 autocast, CPU vs CUDA agreement, speed."""

import time

import torch

from deepradiomics.models import create_model

torch.manual_seed(0)
x = torch.rand(32, 3, 16, 40, 40)
x[:, -1] = 0
x[:, -1, 4:12, 12:28, 12:28] = 1
m = create_model(
    "lesion_texture", task="binary", in_channels=3, texture_channels=1, z_slices=8
).eval()
with torch.no_grad():
    cpu = m(x)["out"]
g = m.cuda()
xg = x.cuda().contiguous(memory_format=torch.channels_last_3d)
g.to(memory_format=torch.channels_last_3d)
with torch.no_grad():
    gpu = g(xg)["out"].cpu()
print("cpu vs cuda fp32 max abs diff", (cpu - gpu).abs().max().item())
g.train()
with torch.autocast("cuda", dtype=torch.bfloat16):
    out = g(xg)["out"]
out.float().sum().backward()
print(
    "bf16 autocast: out dtype",
    out.dtype,
    "grad finite",
    all(torch.isfinite(p.grad).all().item() for p in g.parameters() if p.grad is not None),
)
for bs in (32, 256):
    xb = torch.rand(bs, 3, 16, 40, 40, device="cuda")
    xb[:, -1] = 0
    xb[:, -1, 4:12, 12:28, 12:28] = 1
    for _ in range(3):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            g(xb)["out"].float().sum().backward()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(20):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            g(xb)["out"].float().sum().backward()
    torch.cuda.synchronize()
    print(
        f"batch {bs}: {(time.perf_counter() - t) / 20 / bs * 1e3:.3f} ms per case fwd+bwd",
        torch.cuda.get_device_name(),
    )
