"""Training the demo model's AutoencoderKL on images of the world.

It learns on aligned crops (a quarter of the pixels of a full image, so four times the
steps for the same time; the network is convolutional and sees whole images later), with
L1 and L2 losses on pixels, L1 on their differences (edges keep stripes and contours
crisp) and a light KL term. Afterwards `normalise_latents` folds the latents' per-channel mean and
spread into the 1×1 convolutions around the latent, so latents are centred with unit
variance, as the diffusion model's noise schedule assumes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers import AutoencoderKL

from ostaf.world.checkpoint import StageCheckpoint

Log = Callable[[str], None]


@dataclass(frozen=True)
class VaeRecipe:
    """How the autoencoder is trained."""

    steps: int = 5000
    batch: int = 16
    crop: int = 32  # pixels; a multiple of the 4× downsampling keeps the latent grid aligned
    learning_rate: float = 2e-3
    warmup: int = 100
    kl_weight: float = 1e-4  # per latent element, against the per-pixel losses
    l2_weight: float = 1.0  # squared error pulls hues into place faster than L1 alone
    edge_weight: float = 0.5
    checkpoint_every: int = 250


def to_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, H, W, 3) → float (N, 3, H, W) in [-1, 1]."""
    return images.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def vae_loss(
    vae: AutoencoderKL,
    pixels: torch.Tensor,
    recipe: VaeRecipe,
    noise: torch.Generator,
    frozen_encoder: bool = False,
) -> torch.Tensor:
    """Reconstruction (L1 and L2 on pixels, L1 on neighbour differences) plus the KL."""
    with torch.set_grad_enabled(not frozen_encoder and torch.is_grad_enabled()):
        posterior = vae.encode(pixels).latent_dist
        latents = posterior.sample(generator=noise)  # (B, 4, h, w)
    decoded = vae.decode(latents).sample  # (B, 3, H, W)
    error = decoded - pixels
    edges = (error[..., :, 1:] - error[..., :, :-1]).abs().mean() + (
        error[..., 1:, :] - error[..., :-1, :]
    ).abs().mean()
    kl = posterior.kl().mean() / latents[0].numel()
    pixel = error.abs().mean() + recipe.l2_weight * (error**2).mean()
    return pixel + recipe.edge_weight * edges + recipe.kl_weight * kl


def train_vae(
    vae: AutoencoderKL,
    images: torch.Tensor,
    recipe: VaeRecipe,
    seed: int,
    checkpoint: StageCheckpoint,
    log: Log,
) -> None:
    """Train `vae` in place on uint8 `images` (N, H, W, 3), resuming from `checkpoint`."""
    _fit(vae, list(vae.parameters()), images, recipe, recipe, seed, checkpoint, log, "vae")


@dataclass(frozen=True)
class DecoderRecipe:
    """How the decoder is fine-tuned on whole images after the crop training."""

    steps: int = 1000
    batch: int = 8
    crop: int = 64  # whole images
    learning_rate: float = 5e-4
    warmup: int = 50
    checkpoint_every: int = 250


def finetune_decoder(
    vae: AutoencoderKL,
    images: torch.Tensor,
    recipe: DecoderRecipe,
    loss: VaeRecipe,
    seed: int,
    checkpoint: StageCheckpoint,
    log: Log,
) -> None:
    """Fine-tune the decoder on whole images with the encoder frozen (the latents, and so
    the diffusion model trained on them, stay valid). Crops rarely show the decoder the
    image border, where it otherwise leaves a tinted band that hides the background."""
    parameters = [*vae.post_quant_conv.parameters(), *vae.decoder.parameters()]
    _fit(vae, parameters, images, recipe, loss, seed, checkpoint, log, "decoder", frozen=True)


def _fit(
    vae: AutoencoderKL,
    parameters: list[torch.nn.Parameter],
    images: torch.Tensor,
    recipe: VaeRecipe | DecoderRecipe,
    loss_recipe: VaeRecipe,
    seed: int,
    checkpoint: StageCheckpoint,
    log: Log,
    name: str,
    frozen: bool = False,
) -> None:
    """The training loop of both stages: seeded batches and crops, AdamW, resumable."""
    optimizer = torch.optim.AdamW(
        parameters, lr=recipe.learning_rate, betas=(0.9, 0.99), weight_decay=0.0
    )
    sampler = torch.Generator().manual_seed(seed)
    noise = torch.Generator().manual_seed(seed + 1)
    start = 0
    saved = checkpoint.load()
    if saved is not None:
        vae.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        sampler.set_state(saved["sampler"])
        noise.set_state(saved["noise"])
        start = int(saved["step"])
        log(f"{name}: resuming at step {start}")
    vae.train()
    if frozen:
        vae.encoder.eval()
    size = images.shape[1]
    clock, running = time.perf_counter(), 0.0
    for step in range(start, recipe.steps):
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(step, recipe)
        picks = torch.randint(0, len(images), (recipe.batch,), generator=sampler)
        # One crop position per batch, on the 4-pixel latent grid.
        left, top = (
            torch.randint(0, (size - recipe.crop) // 4 + 1, (2,), generator=sampler) * 4
        ).tolist()
        pixels = to_pixels(images[picks])[..., top : top + recipe.crop, left : left + recipe.crop]
        loss = vae_loss(vae, pixels, loss_recipe, noise, frozen_encoder=frozen)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        running += float(loss.detach())
        done = step + 1
        if done % recipe.checkpoint_every == 0 or done == recipe.steps:
            checkpoint.save(
                {
                    "model": vae.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "sampler": sampler.get_state(),
                    "noise": noise.get_state(),
                    "step": done,
                }
            )
            seconds = time.perf_counter() - clock
            count = done - max(start, done - recipe.checkpoint_every)
            log(f"{name}: step {done}/{recipe.steps} loss {running / count:.4f} ({seconds:.0f} s)")
            clock, running, start = time.perf_counter(), 0.0, done
    vae.eval()


def _learning_rate(step: int, recipe: VaeRecipe | DecoderRecipe) -> float:
    """Linear warm-up, then a cosine decay to zero."""
    warm = min(1.0, (step + 1) / recipe.warmup)
    return recipe.learning_rate * warm * 0.5 * (1.0 + math.cos(math.pi * step / recipe.steps))


@torch.no_grad()
def latent_statistics(vae: AutoencoderKL, images: torch.Tensor, batch: int = 256):
    """Posterior means and standard deviations (N, 4, h, w) of every image, on the CPU
    (the VAE may be on another device)."""
    means, stds = [], []
    for first in range(0, len(images), batch):
        pixels = to_pixels(images[first : first + batch]).to(vae.device)
        posterior = vae.encode(pixels).latent_dist
        means.append(posterior.mean.cpu())
        stds.append(posterior.std.cpu())
    return torch.cat(means), torch.cat(stds)


@torch.no_grad()
def normalise_latents(vae: AutoencoderKL, means: torch.Tensor, stds: torch.Tensor):
    """Fold the per-channel centre and spread of `means` into `quant_conv`/`post_quant_conv`,
    so the encoder emits centred unit-variance latents and decoding is unchanged; returns
    `means` and `stds` as the changed encoder would give them."""
    centre = means.mean(dim=(0, 2, 3))  # (C,)
    spread = means.std(dim=(0, 2, 3))  # (C,)
    channels = centre.numel()
    quant, post = vae.quant_conv, vae.post_quant_conv
    # quant_conv emits (mean, logvar) channels: z' = (z − centre) / spread.
    quant.weight[:channels] /= spread[:, None, None, None]
    quant.bias[:channels] = (quant.bias[:channels] - centre) / spread
    quant.bias[channels:] -= 2.0 * torch.log(spread)
    # post_quant_conv reads z = spread·z' + centre.
    post.bias += (post.weight[:, :, 0, 0] * centre).sum(dim=1)
    post.weight *= spread[None, :, None, None]
    view = (1, channels, 1, 1)
    return (means - centre.view(view)) / spread.view(view), stds / spread.view(view)
