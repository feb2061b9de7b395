"""What every GAN Generator of this plugin shares: a latent ``z ~ N(0, I)`` drawn under the
seeding rule, class labels, the truncation trick, and latent interpolation.

A GAN generator is a deterministic map ``G(z, y)``; sample ``i`` of seed ``s`` uses the latent
``Noise(s).randn`` of index ``i`` (stream 0), and any further randomness of the synthesis
network (StyleGAN's noise inputs) comes from other streams of the same ``Noise``. So the
seeding rule holds by construction: ``sample(8, seed=0)[:4] == sample(4, seed=0)``.
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from typing import Annotated, ClassVar, Literal

import torch
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from zoo_core.errors import ConfigError
from zoo_core.generator import Generator
from zoo_core.interpolation import latent_path
from zoo_core.seeding import Noise

LATENT_STREAM = 0  # Noise stream of z; synthesis noise uses streams 1, 2, ...
LABEL_STREAM = 1_000_000  # the class of a conditional model's sample drawn without labels


def start_size(image_size: int) -> tuple[int, int]:
    """``(s0, k)`` with ``image_size = s0 * 2^k``, ``s0`` in 4..7 and ``k >= 1``."""
    side, doublings = image_size, 0
    while side > 7 and side % 2 == 0:
        side, doublings = side // 2, doublings + 1
    if not 4 <= side <= 7 or doublings == 0:
        raise ValueError(
            f"image_size {image_size} must be s0 * 2^k with s0 in 4..7 and k >= 1 (e.g. 28, 32, 64)"
        )
    return side, doublings


def _doubling(value: int) -> int:
    start_size(value)
    return value


ImageSize = Annotated[int, AfterValidator(_doubling)]  # s0 * 2^k with s0 in 4..7


class GANSampleOptions(BaseModel):
    """Keyword arguments of a GAN's ``sample``."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    labels: list[int] | int | None = Field(
        None,
        description="Class of each sample, or one int for all (conditional models only); "
        "None draws each sample's class uniformly from the seeded noise.",
    )
    truncation: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Truncation ψ in (0, 1]: latents are pulled toward their mean by ψ "
        "(1: none; smaller trades variety for fidelity).",
    )
    z: torch.Tensor | None = Field(
        None, description="Latents (n, z_dim) to use instead of the seeded draw."
    )


class GAN(Generator):
    """Base of the family's Generators.

    Subclasses set the class attributes of :class:`zoo_core.Generator`, have ``z_dim`` (and,
    when class-conditional, ``num_classes``) in their config, and implement
    :meth:`synthesize`.
    """

    SampleOptions: ClassVar[type[BaseModel]] = GANSampleOptions
    capabilities: ClassVar[frozenset[str]] = frozenset({"sample", "interpolate"})

    @property
    def z_dim(self) -> int:
        return self.config.z_dim

    @property
    def num_classes(self) -> int | None:
        return getattr(self.config, "num_classes", None)

    @abstractmethod
    def synthesize(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None = None,
        truncation: float = 1.0,
        noise: Noise | None = None,
    ) -> torch.Tensor:
        """The generator network: latents ``(B, z_dim)`` to raw samples (images in [-1, 1],
        points as they are); differentiable, used by training as it is by sampling.

        Args:
            z: latents.
            labels: ``(B,)`` class indices (conditional models), else None.
            truncation: ψ of the truncation trick (1: none).
            noise: the batch's seeded draws for any randomness beyond ``z`` (None in
                training: draw from torch's global generator).
        """

    def to_output(self, x: torch.Tensor) -> torch.Tensor:
        """Raw samples to the modality's canonical form (images: [-1, 1] -> [0, 1])."""
        if self.modality == "image":
            return ((x.float() + 1) / 2).clamp(0, 1)
        return x.float()

    # ----------------------------------------------------------------- sampling
    def check_call(self, n: int, options: GANSampleOptions) -> None:
        self._check_labels(options.labels, n)
        if options.z is not None and tuple(options.z.shape) != (n, self.z_dim):
            raise ConfigError(
                f"{self.name}.sample(): z has shape {tuple(options.z.shape)}, expected "
                f"{(n, self.z_dim)} (n latents of z_dim {self.z_dim})"
            )

    def _check_labels(self, labels: list[int] | int | None, n: int) -> None:
        classes = self.num_classes
        if labels is None:
            return
        if classes is None:
            raise self.capability_error("conditional", "labels do not apply")
        values = [labels] if isinstance(labels, int) else labels
        if not isinstance(labels, int) and len(values) != n:
            raise ConfigError(f"labels has {len(values)} entries for {n} samples; give {n}")
        bad = [y for y in values if not 0 <= y < classes]
        if bad:
            raise ConfigError(f"labels {bad[:5]} out of range: classes are 0..{classes - 1}")

    def sample_batch(self, noise: Noise, options: GANSampleOptions) -> torch.Tensor:
        if options.z is not None:
            z = options.z[noise.positions.cpu()].to(self.device, torch.float32)  # (B, z_dim)
        else:
            z = noise.randn(self.z_dim, stream=LATENT_STREAM)  # (B, z_dim)
        labels = self._labels(noise, options.labels)
        with _inference(self):
            return self.to_output(self.synthesize(z, labels, options.truncation, noise))

    def _labels(self, noise: Noise, labels: list[int] | int | None) -> torch.Tensor | None:
        if labels is None:
            if self.num_classes is None:
                return None
            # A class-conditional model without labels draws each sample's class uniformly
            # (the training classes are balanced): its unconditional distribution.
            return noise.randint(self.num_classes, stream=LABEL_STREAM).to(self.device)
        if isinstance(labels, int):
            return torch.full((len(noise),), labels, device=self.device)
        return torch.tensor(labels, device=self.device)[noise.positions.to(self.device)]

    # ----------------------------------------------------------------- interpolation
    @torch.no_grad()
    def interpolate(
        self,
        a: int | torch.Tensor,
        b: int | torch.Tensor,
        steps: int,
        *,
        method: Literal["slerp", "linear"] = "slerp",
        labels: int | None = None,
        truncation: float = 1.0,
        seed: int = 0,
    ) -> torch.Tensor:
        """Samples along a path between two latents.

        Args:
            a, b: the end points: latents ``(z_dim,)``, or seeds (the latent of sample 0 of
                that seed, so ``interpolate(s, t, ...)[0] == sample(1, seed=s)[0]`` where the
                synthesis has no noise inputs).
            steps: points on the path, ends included (at least 2).
            method: ``"slerp"`` (spherical: for Gaussian latents the path keeps their norm,
                White 2016, arXiv 1609.04468) or ``"linear"``.
            labels: one class for the whole path (conditional models).
            truncation: ψ as in ``sample``.
            seed: the seed of any synthesis noise (the same for every point of the path).

        Returns:
            ``(steps, ...)`` samples in the canonical form.
        """
        za, zb = self._end_point(a, "a"), self._end_point(b, "b")
        z = latent_path(za, zb, steps, method)  # (S, D)
        options = GANSampleOptions(labels=labels, truncation=truncation)
        self._check_labels(options.labels, steps)
        noise = Noise(seed, torch.zeros(steps, dtype=torch.int64, device=self.device))
        with _inference(self):
            out = self.synthesize(z, self._labels(noise, labels), truncation, noise)
        return self.to_output(out)

    def _end_point(self, value: int | torch.Tensor, name: str) -> torch.Tensor:
        if isinstance(value, torch.Tensor):
            if tuple(value.shape) != (self.z_dim,):
                raise ConfigError(
                    f"interpolate(): {name} has shape {tuple(value.shape)}, expected "
                    f"({self.z_dim},), or pass a seed"
                )
            return value.to(self.device, torch.float64)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"interpolate(): {name} must be a seed (int) or a latent tensor")
        noise = Noise.for_range(value, 0, 1, self.device)
        return noise.randn(self.z_dim, stream=LATENT_STREAM, dtype=torch.float64)[0]


@contextlib.contextmanager
def _inference(model: GAN):
    """Sampling runs in eval mode: batch norm uses its running statistics, so a sample does
    not depend on the others of its batch (the seeding rule), and training-only behaviour
    (StyleGAN's style mixing, its ``w_avg`` update) is off. The mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
