"""``lesion_texture``: a rotation-equivariant CNN for the texture and layout of a lesion.

Built for phenotypes that a plain VGG trunk with early pooling and global averaging over the
whole crop misses (``bench/cnn_investigation.md``): how oriented a texture at a
few-millimetre wavelength is, whatever its angle, and where a necrotic core sits inside the
lesion. The design, each part measured there:

- the lesion mask is the last input channel (read as mask > 0.5, so interpolation and
  intensity jitter do not blur it);
- a learned bank of zero-mean in-plane filters at the input resolution (no downsampling
  before the texture is resolved), each applied at ``rotations`` angles in [0, pi): a lifting
  group convolution, so a texture's orientation moves the response along the angle axis;
  optionally (``gabor``) started as Gabor quadrature pairs (3 to 6 pixel wavelengths for the
  default 9-pixel kernel), which track the demo's texture anisotropy far better than random
  kernels do, before and after training (``bench/demo_results.md``, session 8);
- orderless pooling over the lesion's interior: per filter and angle the mean squared
  response (a band-pass energy, computed through the power spectrum: ``OrientedFilters``);
  per filter its mean over the angles (log, how much texture) and its spread over the
  angles (std / mean: zero for an isotropic texture, large for stripes, whatever their
  angle);
- a 1x1 intensity map of every image channel: masked mean and standard deviation over the
  lesion, and the distance between each map's centre of mass and the lesion's centroid
  relative to the lesion's radius (a displaced dark core moves it; invariant to rotations);
- the lesion's log volume over the whole crop (size is the strongest single phenotype);
- optional (``shape``): fixed statistics of the mask's outline over the whole crop, which
  the log volume cannot tell apart from size: the log in-plane perimeter and log count of
  through-plane faces (voxel edges, so spicules and lobes raise them at a given volume) and
  the largest and the spread of the outline's in-plane distances from each slice's centre
  over their mean (invariant to in-plane rotations by 90 degrees and flips);
- optional (``levels``): soft intensity levels, learned 1x1 maps through a sigmoid,
  initialised as soft thresholds of the first channel at evenly spaced levels of its
  [0, 1] window: per level the share of the lesion below it (a soft histogram, e.g. the
  dark necrotic share) and the in-plane distance of that part's centroid from the lesion's
  over the lesion's radius (a displaced core moves it; a region centroid, steadier than the
  soft-argmax of a single map);
- optional (``relative_levels``): as many levels again, read after an in-plane 3 x 3 mean
  and relative to each lesion's median, starting 0.02 wide at 1/16, 2/16, ... of the window
  under it: a dark core whatever the site's intensity offset, and not single dark texture
  voxels (with them the demo's CNN embeddings carry core eccentricity at r 0.49-0.60 and
  necrosis at 0.60-0.77 in the truth audit's probe, against 0.38-0.48 and 0.39-0.45;
  ``bench/demo_results.md``, session 8);
- optional (``texture_floor``): the lesion's parts darker than a floor (a necrotic core:
  in-plane 5 x 5 mean of the first channel below it) and ``erode`` voxels around them are
  left out of the texture pooling; the core's edge is a strong isotropic edge that would
  otherwise lower the orientation spread and raise the energies with the necrosis;
- batch-standardised, then a linear layer and ReLU (the head adds the last layer).

``forward_features(x) -> [N, num_features]`` for ``x`` of shape ``[N, C, D, H, W]``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from deepradiomics.models.registry import register_model

_EPS = 1e-6
_LEVEL_WIDTH = 0.05  # initial width of the soft intensity levels, in window units
_RELATIVE_WIDTH = 0.02  # and of the relative ones (read after a 3 x 3 mean: less noise)


def rotated_kernels(weight: torch.Tensor, rotations: int) -> torch.Tensor:
    """``[K, 1, k, k]`` kernels -> ``[K * rotations, 1, k, k]``: each kernel at ``rotations``
    angles evenly spaced in [0, pi), bilinearly resampled (differentiable in ``weight``)."""
    k = weight.shape[-1]
    angles = torch.arange(rotations, device=weight.device, dtype=weight.dtype) * (
        math.pi / rotations
    )
    cos, sin, zero = torch.cos(angles), torch.sin(angles), torch.zeros_like(angles)
    theta = torch.stack([cos, -sin, zero, sin, cos, zero], 1).view(rotations, 2, 3)
    grid = F.affine_grid(theta, [rotations, 1, k, k], align_corners=True)
    n = weight.shape[0]
    w = weight.repeat_interleave(rotations, 0)
    return F.grid_sample(w, grid.repeat(n, 1, 1, 1), align_corners=True)


class OrientedFilters(nn.Module):
    """``filters`` learned zero-mean in-plane kernels, each at ``rotations`` angles, and their
    band-pass energies over a region of a volume (``forward``)."""

    def __init__(self, filters: int, kernel: int, rotations: int, gabor: bool = False) -> None:
        super().__init__()
        if kernel % 2 == 0 or kernel < 3:
            raise ValueError(f"kernel must be an odd size >= 3, got {kernel}")
        if rotations < 1 or filters < 1:
            raise ValueError("filters and rotations must be at least 1")
        # what each response sees, for the receptive-field tracer (the FFT hides it)
        self.receptive_kernel = (1, kernel, kernel)
        self.rotations = rotations
        # 5-D like a (1, k, k) Conv3d weight, so model.to(memory_format=channels_last_3d) (the
        # training loop) applies to it
        init = (
            gabor_kernels(filters, kernel)
            if gabor
            else torch.randn(filters, kernel, kernel) / kernel
        )
        self.weight = nn.Parameter(init[:, None, None])
        r = torch.linspace(-1, 1, kernel)
        disc = ((r[:, None] ** 2 + r[None, :] ** 2) <= 1).to(torch.float32)
        self.register_buffer("disc", disc, persistent=False)  # rotating keeps a disc a disc

    def kernels(self) -> torch.Tensor:
        """``[filters * rotations, 1, k, k]``, filter-major."""
        w = self.weight[:, :, 0] * self.disc
        w = w - w.sum((-2, -1), keepdim=True) / self.disc.sum() * self.disc  # band-pass
        return rotated_kernels(w, self.rotations) if self.rotations > 1 else w

    def forward(self, x: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
        """Mean squared response ``[N, C, filters * rotations]`` of each kernel to each channel
        of ``x`` ``[N, C, D, H, W]`` windowed by ``region`` ``[N, 1, D, H, W]`` (0/1), per
        region voxel. The region's mean is removed first, so its edge is not an edge.

        Computed in the frequency domain (Parseval: the energy of a circular convolution
        is the power spectrum weighted by the kernel's squared transfer function), which is
        the convolution layer's result at a fraction of its cost: the volume's spectrum needs
        no gradient and the kernels' spectra are ``k x k`` transforms. ``maps`` splits the
        same energies by voxel."""
        with torch.autocast(x.device.type, enabled=False):  # FFTs want float32 (no bf16)
            windowed, bank, count = self._windowed(x.float(), region.float())
            h, w = x.shape[-2:]
            power = torch.fft.fft2(windowed).abs().square().sum(2) / count[:, :, 0]
            return torch.einsum("nchw,fhw->ncf", power, _transfer(bank, h, w)) / (h * w)

    def maps(self, x: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
        """``[N, C * filters * rotations, D, H, W]``: each region voxel's share of each energy
        of ``forward``: the energy is the quadratic form ``w . (a * w) / count`` of the
        windowed volume ``w`` with the kernel's circular autocorrelation ``a``, split by
        voxel (``w(v) (a * w)(v) / count``: zero outside the region, of either sign, summed
        over the volume the energy). A map per kernel costs what all the energies cost
        together, so only attribution asks for them."""
        with torch.autocast(x.device.type, enabled=False):
            windowed, bank, count = self._windowed(x.float(), region.float())
            h, w = x.shape[-2:]
            spectrum = torch.fft.fft2(windowed)[:, :, None]  # [N, C, 1, D, H, W]
            transfer = _transfer(bank, h, w)[:, None]  # [K, 1, H, W]
            correlated = torch.fft.ifft2(spectrum * transfer).real  # a * w, [N, C, K, D, H, W]
            return (windowed[:, :, None] * correlated / count[..., None]).flatten(1, 2)

    def _windowed(
        self, x: torch.Tensor, region: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x`` less its region mean, zero outside the region; the kernel bank; the region's
        voxel count ``[N, 1, 1, 1, 1]``."""
        n = x.shape[0]
        bank = self.kernels().float()
        k, (h, w) = bank.shape[-1], x.shape[-2:]
        if h < k or w < k:
            raise ValueError(f"the crop's {h}x{w} slices are smaller than the {k}x{k} kernels")
        count = region.flatten(1).sum(1).clamp_min(1.0).view(n, 1, 1, 1, 1)
        mean = (x * region).sum((2, 3, 4), keepdim=True) / count
        return (x - mean) * region, bank, count


def gabor_kernels(filters: int, kernel: int) -> torch.Tensor:
    """``[filters, kernel, kernel]`` Gabor kernels of unit norm: quadrature pairs (cosine and
    sine phase) of stripes across the columns at wavelengths evenly spaced from 3 pixels to 2/3
    of the kernel (a whole period inside it), under a Gaussian envelope 0.6 wavelengths wide.
    The rotated copies (``rotated_kernels``) turn them to every angle."""
    wavelengths = torch.linspace(3.0, max(3.0, 2 * kernel / 3), (filters + 1) // 2)
    r = torch.arange(kernel, dtype=torch.float32) - kernel // 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    bank = []
    for lam in wavelengths.tolist():
        envelope = torch.exp(-(xx.square() + yy.square()) / (2 * (0.6 * lam) ** 2))
        bank += [envelope * torch.cos(2 * math.pi * xx / lam + p) for p in (0.0, math.pi / 2)]
    w = torch.stack(bank[:filters])
    return w / w.square().sum((1, 2), keepdim=True).sqrt()


def _transfer(bank: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``[K, h, w]``: each kernel's squared transfer function on an ``h x w`` plane (its
    power spectrum, which is the spectrum of its circular autocorrelation)."""
    k = bank.shape[-1]
    return torch.fft.fft2(F.pad(bank[:, 0], (0, w - k, 0, h - k))).abs().square()


Centre = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def lesion_centre(mask: torch.Tensor) -> Centre:
    """In-plane centroid (row, column), each ``[N, 1]``, of a 0/1 ``mask`` ``[N, 1, D, H,
    W]``, and its in-plane radius (sqrt of its mean area per slice, at least 1)."""
    d, h, w = mask.shape[-3:]
    with torch.autocast(mask.device.type, enabled=False):  # positions want float32 (no bf16)
        mask = mask.float()
        rows, cols = mask.sum((2, 4)).flatten(1), mask.sum((2, 3)).flatten(1)  # [N, H], [N, W]
        area = rows.sum(1, keepdim=True)
        ys = torch.arange(h, device=mask.device, dtype=mask.dtype)
        xs = torch.arange(w, device=mask.device, dtype=mask.dtype)
        cy = (rows @ ys)[:, None] / area.clamp_min(_EPS)
        cx = (cols @ xs)[:, None] / area.clamp_min(_EPS)
        return cy, cx, (area / d).clamp_min(1.0).sqrt()


def centre_offset(weight: torch.Tensor, total: torch.Tensor, centre: Centre) -> torch.Tensor:
    """``[N, C]``: in-plane distance of the centre of mass of each channel of ``weight``
    ``[N, C, D, H, W]`` (>= 0, summing to ``total`` ``[N, C]``) from the lesion's ``centre``,
    over its radius. The sums run over the slices' rows and columns before the positions
    weigh them: no full-size products."""
    cy, cx, radius = centre
    h, w = weight.shape[-2:]
    with torch.autocast(weight.device.type, enabled=False):  # float32 sums (no bf16 matmul)
        weight, total = weight.float(), total.float()
        ys = torch.arange(h, device=weight.device, dtype=weight.dtype)
        xs = torch.arange(w, device=weight.device, dtype=weight.dtype)
        py = weight.sum((2, 4)) @ ys / total
        px = weight.sum((2, 3)) @ xs / total
        return ((py - cy).square() + (px - cx).square() + _EPS).sqrt() / radius


def outline_statistics(mask: torch.Tensor) -> torch.Tensor:
    """``[N, 4]`` statistics of the outline of a 0/1 ``mask`` ``[N, 1, D, H, W]``: log
    in-plane perimeter and log through-plane faces (voxel edges between lesion and
    background, +1), and the max and the coefficient of variation of the in-plane distances
    of the in-plane outline voxels from their slice's lesion centroid over their mean (0 for
    an empty mask). No parameters: the mask is not differentiated."""
    m = mask[:, 0]
    n, d, h, w = m.shape
    pad = F.pad(m, (1, 1, 1, 1))
    edges_y = (pad[:, :, 1:, 1:-1] - pad[:, :, :-1, 1:-1]).abs()  # [N, D, H + 1, W]
    edges_x = (pad[:, :, 1:-1, 1:] - pad[:, :, 1:-1, :-1]).abs()  # [N, D, H, W + 1]
    perimeter = edges_y.flatten(1).sum(1) + edges_x.flatten(1).sum(1)
    faces = (F.pad(m, (0, 0, 0, 0, 1, 1))).diff(dim=1).abs().flatten(1).sum(1)
    # outline: lesion voxels with a 4-neighbour outside (in-plane)
    inner = pad[:, :, :-2, 1:-1] * pad[:, :, 2:, 1:-1] * pad[:, :, 1:-1, :-2] * pad[:, :, 1:-1, 2:]
    outline = m * (1 - inner)
    ys = torch.arange(h, device=m.device, dtype=m.dtype).view(1, 1, h, 1)
    xs = torch.arange(w, device=m.device, dtype=m.dtype).view(1, 1, 1, w)
    area = m.sum((2, 3), keepdim=True).clamp_min(1.0)
    cy, cx = (m * ys).sum((2, 3), keepdim=True) / area, (m * xs).sum((2, 3), keepdim=True) / area
    dist = ((ys - cy).square() + (xs - cx).square()).sqrt()
    count = outline.flatten(1).sum(1).clamp_min(1.0)
    mean = (dist * outline).flatten(1).sum(1) / count
    var = ((dist - mean.view(n, 1, 1, 1)).square() * outline).flatten(1).sum(1) / count
    biggest = (dist * outline).flatten(1).amax(1)
    scale = mean.clamp_min(_EPS)
    return torch.stack(
        [perimeter.log1p(), faces.log1p(), biggest / scale, var.sqrt() / scale], dim=1
    )


class Pointwise(nn.Conv3d):
    """A 1x1x1 convolution computed as a channel contraction (faster than ``conv3d`` on CPU
    for a few channels). Still a module with ``Conv3d``'s parameters, so checkpoints load and
    hooks (Grad-CAM, the sanity check's cascade) see it."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.einsum("ncdhw,oc->nodhw", x, self.weight[:, :, 0, 0, 0])
        return out + self.bias.view(1, -1, 1, 1, 1)


def box_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    """In-plane ``size`` x ``size`` mean of ``x`` ``[N, C, D, H, W]`` over the voxels inside
    the image (``avg_pool3d(..., count_include_pad=False)``, faster on CPU as window sums)."""
    r = size // 2
    padded = F.pad(x, (r, r, r, r))
    total = padded.unfold(-1, size, 1).sum(-1).unfold(-2, size, 1).sum(-1)
    h, w = x.shape[-2:]
    ones = F.pad(x.new_ones(1, h, w), (r, r, r, r))
    count = ones.unfold(-1, size, 1).sum(-1).unfold(-2, size, 1).sum(-1)
    return total / count


def erode_in_plane(region: torch.Tensor, voxels: int) -> torch.Tensor:
    """``region`` ``[..., H, W]`` (0-1) eroded in-plane by ``voxels``: the minimum over a
    square of side ``2 * voxels + 1``; outside the image counts as inside the region (unfold:
    about 3x faster than ``max_pool3d`` on CPU)."""
    if voxels <= 0:
        return region
    k = 2 * voxels + 1
    padded = F.pad(region, (voxels, voxels, voxels, voxels), value=1.0)
    return padded.unfold(-1, k, 1).amin(-1).unfold(-2, k, 1).amin(-1)


def masked_mean(feat: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean ``[N, C]`` of ``feat`` ``[N, C, ...]`` over positions weighted by ``weight``
    ``[N, 1, ...]`` (>= 0)."""
    total = weight.flatten(1).sum(1, keepdim=True).clamp_min(_EPS)
    return (feat * weight).flatten(2).sum(-1) / total


class LesionTextureNet(nn.Module):
    """Oriented band-pass energies and intensity statistics pooled over the lesion (module
    docstring), a linear layer."""

    def __init__(
        self,
        in_channels: int = 2,
        filters: int = 8,
        kernel: int = 9,
        rotations: int = 8,
        intensity: int = 4,
        hidden: int = 32,
        erode: int = 2,
        texture_channels: int | None = None,
        z_slices: int | None = None,
        shape: bool = False,
        levels: int = 0,
        texture_floor: float | None = None,
        gabor: bool = False,
        relative_levels: bool = False,
    ) -> None:
        super().__init__()
        if in_channels < 2:
            raise ValueError(
                "lesion_texture needs an image channel and the mask as the last channel"
            )
        if z_slices is not None and z_slices < 1:
            raise ValueError(f"z_slices must be at least 1, got {z_slices}")
        self.channels_last = False  # the training loop keeps the standard layout (``pooled``)
        self.in_channels, images = in_channels, in_channels - 1
        self.texture_channels = images if texture_channels is None else int(texture_channels)
        if not 1 <= self.texture_channels <= images:
            raise ValueError(
                f"texture_channels must be between 1 and {images} (the image channels), "
                f"got {texture_channels}"
            )
        self.z_slices, self.erode, self.rotations = z_slices, int(erode), int(rotations)
        self.intensity = Pointwise(images, intensity)
        # the 1x1 intensity and level maps, zero outside the lesion (and its central slab):
        # what the model reads, hence Grad-CAM's default layer; in ``attribution`` also the
        # texture energies' voxel shares (otherwise they go through the FFT and have no map)
        self.lesion_maps = nn.Identity()
        self._attributing = False  # inside ``attribution``
        self.oriented = OrientedFilters(filters, kernel, rotations, gabor)
        if levels < 0:
            raise ValueError(f"levels must be at least 0, got {levels}")
        if relative_levels and not levels:
            raise ValueError("relative_levels adds to the soft levels: set levels >= 1")
        self.shape, self.levels = bool(shape), int(levels)
        self.relative_levels = bool(relative_levels)
        self.texture_floor = None if texture_floor is None else float(texture_floor)
        if self.levels:
            n, sets = self.levels, 2 if self.relative_levels else 1
            self.level_maps = Pointwise(images * sets, n * sets)
            steps = torch.arange(1, n + 1, dtype=torch.float32) / (n + 1)
            with torch.no_grad():  # soft thresholds of the first channel, 0.05 wide
                self.level_maps.weight.zero_()
                self.level_maps.weight[:n, 0] = -1.0 / _LEVEL_WIDTH
                self.level_maps.bias[:n].copy_(steps / _LEVEL_WIDTH)
                if self.relative_levels:  # of its relative copy: 1/16, 2/16... under the median
                    self.level_maps.weight[n:, images] = -1.0 / _RELATIVE_WIDTH
                    self.level_maps.bias[n:].copy_(-steps / 4 / _RELATIVE_WIDTH)
            self.levels = n * sets  # the level maps in all
        spread = filters * self.texture_channels
        pooled = 2 * spread + 3 * intensity + 1 + 4 * self.shape + 2 * self.levels
        if hidden < 0:
            raise ValueError(f"hidden must be at least 0, got {hidden}")
        # hidden 0: the head reads the normalised statistics themselves (a linear model of them)
        layers = [nn.Linear(pooled, hidden), nn.ReLU(inplace=True)] if hidden else []
        self.mlp = nn.Sequential(nn.BatchNorm1d(pooled), *layers)
        self.num_features = hidden or pooled

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled vector before the MLP: [texture energy (log), orientation spread,
        intensity means, intensity SDs, core offsets, log volume, outline statistics
        (``shape``), level shares and offsets (``levels``)]."""
        # standard layout: the broadcasts below are ~5x slower on channels_last_3d (the
        # training loop's format for convolution-heavy models; ``channels_last = False``
        # asks it for this one, so this is no copy there)
        x = x.contiguous()
        mask = (x[:, -1:] > 0.5).to(x.dtype)
        log_volume = torch.log1p(mask.flatten(1).sum(1, keepdim=True))  # the whole crop's lesion
        extra = [outline_statistics(mask)] if self.shape else []
        if self.z_slices is not None and x.shape[2] > self.z_slices:  # the lesion's middle slab
            lo = (x.shape[2] - self.z_slices) // 2
            x, mask = x[:, :, lo : lo + self.z_slices], mask[:, :, lo : lo + self.z_slices]
        image = x[:, :-1]
        interior = self._interior(image, mask)
        texture = image[:, : self.texture_channels]
        shares = [self.oriented.maps(texture, interior)] if self._attributing else []
        maps = [self.intensity(image)]
        if self.levels:  # relative: each image channel twice, as it is and relative
            relative = [self._relative(image, mask)] if self.relative_levels else []
            maps.append(self.level_maps(torch.cat([image, *relative], 1)))
        # zero outside the lesion, which the model never reads: Grad-CAM's default layer
        maps = self.lesion_maps(torch.cat([torch.cat(maps, 1) * mask, *shares], 1))
        sizes = [self.intensity.out_channels, self.levels] + [m.shape[1] for m in shares]
        f, level_logits, *shares = maps.split(sizes, 1)
        # intensity: masked mean (``f`` is zero outside the lesion already), SD and the offset
        # of each map's centre of mass
        count = mask.flatten(1).sum(1, keepdim=True).clamp_min(_EPS)
        mean = f.flatten(2).sum(-1) / count
        sd = (masked_mean((f - mean[..., None, None, None]).square(), mask) + _EPS).sqrt()
        centre = lesion_centre(mask)
        offset = self._core_offset(f, mask, centre)
        # texture: band-pass energy per filter and angle over the lesion's interior
        energy = shares[0].sum((2, 3, 4)) if shares else self.oriented(texture, interior)
        energy = (energy + _EPS).view(x.shape[0], -1, self.rotations)
        level = energy.mean(-1)
        spread = energy.std(-1) / level if self.rotations > 1 else torch.zeros_like(level)
        if self.levels:
            extra += self._levels(level_logits, mask, count, centre)
        return torch.cat([level.log(), spread, mean, sd, offset, log_volume, *extra], dim=1)

    def _interior(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Where the texture is pooled: the lesion less a dark core (``texture_floor``), eroded
        in-plane by ``erode`` voxels (kept whole where that would leave nothing)."""
        interior = mask
        if self.texture_floor is not None:  # leave a dark core and its edge out of the texture
            bright = mask * (1 - self._dark(image[:, :1]))
            dark_only = bright.flatten(1).sum(1) == 0  # nothing left: the whole lesion
            interior = torch.where(dark_only[:, None, None, None, None], mask, bright)
        if self.erode > 0:
            eroded = erode_in_plane(interior, self.erode)
            empty = eroded.flatten(1).sum(1) == 0  # a lesion thinner than the erosion
            interior = torch.where(empty[:, None, None, None, None], interior, eroded)
        return interior

    def map_groups(self) -> dict[str, slice]:
        """What the channels of ``lesion_maps`` are, by kind, as laid out in ``attribution``:
        the intensity maps, the soft levels and the texture energies' voxel shares."""
        n_int = self.intensity.out_channels
        n_tex = self.oriented.weight.shape[0] * self.rotations * self.texture_channels
        groups = {"intensity": slice(0, n_int), "levels": slice(n_int, n_int + self.levels)}
        groups["texture"] = slice(n_int + self.levels, n_int + self.levels + n_tex)
        return {k: v for k, v in groups.items() if v.stop > v.start}

    @contextmanager
    def attribution(self) -> Iterator[None]:
        """Within it the texture energies are summed from their voxel shares, which join the
        intensity and level maps in ``lesion_maps`` (Grad-CAM's default layer), so Grad-CAM
        places the texture's part of the score too: a share's Grad-CAM weight is the score's
        gradient with respect to its energy over the voxel count, so over the voxels the
        texture's map adds up to the energies' first-order contribution. Same outputs up to
        float rounding; each kernel's response is computed, so slower."""
        self._attributing = True
        try:
            yield
        finally:
            self._attributing = False

    @staticmethod
    def _levels(
        logits: torch.Tensor, mask: torch.Tensor, count: torch.Tensor, centre: Centre
    ) -> list[torch.Tensor]:
        """Per soft level (``logits`` of its 1x1 map): its share of the lesion (``count``
        voxels) and its centroid's in-plane distance from the lesion's centroid over the
        lesion's in-plane radius."""
        below = torch.sigmoid(logits) * mask  # [N, L, D, H, W]
        total = below.flatten(2).sum(-1)
        return [total / count, centre_offset(below, total.clamp_min(_EPS), centre)]

    @staticmethod
    def _relative(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``image`` after an in-plane 3 x 3 mean (a region, not single dark texture voxels),
        less each channel's median over the lesion (a site's intensity offset cancels)."""
        smooth = box_mean(image, 3)
        inside = smooth.masked_fill(mask == 0, float("nan")).flatten(2)
        median = torch.nanmedian(inside, -1).values.nan_to_num(0.0)
        return smooth - median[..., None, None, None]

    def _dark(self, channel: torch.Tensor) -> torch.Tensor:
        """0/1 ``[N, 1, D, H, W]``: where the in-plane 5 x 5 mean of ``channel`` is below
        ``texture_floor`` (a region such as a necrotic core, not single dark texture voxels)."""
        return (box_mean(channel, 5) < self.texture_floor).to(channel.dtype)

    @staticmethod
    def _core_offset(f: torch.Tensor, mask: torch.Tensor, centre: Centre) -> torch.Tensor:
        """Per channel: in-plane distance between the soft-argmax of the map inside the
        lesion and the lesion's centroid, over the lesion's in-plane radius."""
        logits = f.masked_fill(mask == 0, -1e4).flatten(2)
        p = torch.softmax(logits, -1).view_as(f)  # sums to 1 per channel
        return centre_offset(p, p.new_ones(p.shape[:2]), centre)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.pooled(x))

    forward = forward_features


@register_model
def lesion_texture(
    in_channels: int = 2,
    filters: int = 8,
    kernel: int = 9,
    rotations: int = 8,
    intensity: int = 4,
    hidden: int = 32,
    erode: int = 2,
    texture_channels: int | None = None,
    z_slices: int | None = None,
    shape: bool = False,
    levels: int = 0,
    texture_floor: float | None = None,
    gabor: bool = False,
    relative_levels: bool = False,
) -> LesionTextureNet:
    """Lesion texture/layout CNN; the last input channel must be the lesion mask
    (``preprocess.mask_channel: true``). ``filters`` x ``rotations`` oriented ``kernel`` x
    ``kernel`` in-plane filters on the first ``texture_channels`` image channels (all by
    default); ``erode`` voxels trimmed off the lesion's rim before texture pooling (its edge
    is not texture); ``z_slices``: look only at that many central slices (the crop is centred
    on the lesion; the log volume still counts the whole mask); ``shape``: add the outline
    statistics; ``levels``: that many soft intensity levels (share and centroid offset);
    ``hidden``: width of the ReLU layer after the pooled statistics (0: none, the head is
    linear in the batch-normalised statistics);
    ``texture_floor``: leave the lesion's parts whose first channel (in-plane 5 x 5 mean) is
    below it, and ``erode`` voxels around them, out of the texture pooling (a necrotic
    core's edge is a strong isotropic edge, not texture); ``gabor``: start the filters as
    Gabor quadrature pairs (``gabor_kernels``) instead of random kernels;
    ``relative_levels``: as many soft levels again, of the image channels after an in-plane
    3 x 3 mean and relative to the lesion's median (a site's intensity offset cancels),
    starting 1/16, 2/16, ... of the window under it."""
    return LesionTextureNet(
        in_channels,
        filters,
        kernel,
        rotations,
        intensity,
        hidden,
        erode,
        texture_channels,
        z_slices,
        shape,
        levels,
        texture_floor,
        gabor,
        relative_levels,
    )
