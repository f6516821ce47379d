"""Latent arithmetic: attribute vectors, shifts along them, and analogies (Optimus, Li et al., 2020, section 6).

A text VAE's posterior places sentences that share a property (an eat type, a sentiment, a tense) in a region of the
latent space; the difference between the mean latent of sentences with the property and that of sentences without it
is the property's *attribute vector*. Adding it to a sentence's latent, scaled by a strength, and decoding moves the
sentence towards the property while (ideally) keeping the rest; an analogy a : b :: c : ? decodes z_c + (z_b - z_a),
c moved by the difference that turns a into b.

Pure tensor functions (the model's `attribute_vector`, `shift` and `analogy` methods encode and decode around them),
and the file that ships a model's named vectors beside its weights (`attribute_vectors.safetensors`, with the SHA-256
of the weights they were made with, so that a vector never moves the latents of other weights). Latents are the
posterior modes (= means) of the decoded latent, (batch, latent_size); a vector is (latent_size,). This file travels
to the Hub beside the model's code, so it imports only torch and safetensors.
"""

from __future__ import annotations

import math

import torch


def check_vector(vector, latent_size: int | None = None, name: str = "vector") -> torch.Tensor:
    """`vector` as a 1-D floating-point tensor; `ValueError` naming the problem for any other shape, a size other
    than `latent_size` (when given), an integer dtype or NaN/infinite values."""
    if not isinstance(vector, torch.Tensor):
        raise ValueError(f"`{name}` must be a torch.Tensor of shape (latent_size,), got {type(vector).__name__}.")
    if vector.dim() == 2 and vector.shape[0] == 1:
        vector = vector[0]  # (1, latent_size), as a batch of one
    if vector.dim() != 1:
        raise ValueError(f"`{name}` must have shape (latent_size,), got {tuple(vector.shape)}.")
    if latent_size is not None and vector.shape[0] != latent_size:
        raise ValueError(
            f"`{name}` has {vector.shape[0]} values but the model's latent has {latent_size}: it was made with "
            "another model. Make it again with this model (`model.attribute_vector(...)`)."
        )
    if not torch.is_floating_point(vector):
        raise ValueError(f"`{name}` must be floating point, got {vector.dtype}.")
    if not torch.isfinite(vector).all():
        raise ValueError(f"`{name}` holds NaN or infinite values: it cannot move a latent anywhere meaningful.")
    return vector


def check_strength(strength) -> float:
    """`strength` as a float; `ValueError` for booleans, non-numbers and NaN or infinite values."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not math.isfinite(strength):
        raise ValueError(f"`strength` must be a finite number (1.0 moves by the whole vector), got {strength!r}.")
    return float(strength)


def _check_latents(latents: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(latents, torch.Tensor) or latents.dim() != 2:
        shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
        raise ValueError(f"`{name}` must be a tensor of shape (batch, latent_size), got {shape}.")
    if latents.shape[0] == 0:
        raise ValueError(f"`{name}` is empty: an attribute vector needs at least one text on each side.")
    if not torch.is_floating_point(latents) or not torch.isfinite(latents).all():
        raise ValueError(f"`{name}` must hold finite floating-point values.")
    return latents


def attribute_vector(with_latents: torch.Tensor, without_latents: torch.Tensor) -> torch.Tensor:
    """The mean of `with_latents` (n, latent_size) minus the mean of `without_latents` (m, latent_size): the
    direction from texts without a property to texts with it, (latent_size,), in float32 at least."""
    with_latents = _check_latents(with_latents, "with_latents")
    without_latents = _check_latents(without_latents, "without_latents")
    if with_latents.shape[1] != without_latents.shape[1]:
        raise ValueError(
            f"`with_latents` and `without_latents` have different latent sizes ({with_latents.shape[1]} and "
            f"{without_latents.shape[1]}): encode both with the same model."
        )
    compute = torch.promote_types(with_latents.dtype, torch.float32)
    return with_latents.to(compute).mean(0) - without_latents.to(compute).mean(0).to(with_latents.device)


def shift_latents(latents: torch.Tensor, vector: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """`latents` (batch, latent_size) + `strength` * `vector` (latent_size,), in the latents' dtype and device.
    Strength 0 gives the latents back; a negative strength moves away from the property."""
    if not isinstance(latents, torch.Tensor) or latents.dim() != 2:
        raise ValueError("`latents` must be a tensor of shape (batch, latent_size).")
    vector = check_vector(vector, latents.shape[1])
    strength = check_strength(strength)
    return latents + (strength * vector).to(device=latents.device, dtype=latents.dtype)


def analogy_latent(z_a: torch.Tensor, z_b: torch.Tensor, z_c: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """a : b :: c : ?, as z_c + strength * (z_b - z_a): c moved by what turns a into b. Each argument is one latent
    (latent_size,) or a batch (batch, latent_size) (broadcast against each other)."""
    strength = check_strength(strength)
    sizes = {z.shape[-1] for z in (z_a, z_b, z_c)}
    if len(sizes) != 1:
        raise ValueError(f"z_a, z_b and z_c must have the same latent size, got {sorted(sizes)}.")
    return z_c + strength * (z_b - z_a)


ATTRIBUTE_VECTORS_FILE = "attribute_vectors.safetensors"
VECTORS_FORMAT = "twrvae-attribute-vectors"


def save_attribute_vectors(vectors: dict[str, torch.Tensor], path, weights_sha256: str | None) -> None:
    """Write named vectors (each (latent_size,)) to `path` (safetensors), with the weights' fingerprint."""
    from safetensors.torch import save_file

    metadata = {"format": VECTORS_FORMAT, "weights_sha256": weights_sha256 or ""}
    save_file(
        {name: check_vector(v, name=name).float().contiguous() for name, v in vectors.items()}, str(path), metadata
    )


def load_attribute_vectors(path) -> tuple[dict[str, torch.Tensor], str | None]:
    """The named vectors of `path` and the fingerprint of the weights they were made with (None if unrecorded)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        if metadata.get("format") != VECTORS_FORMAT:
            raise ValueError(f"{path} is not a file of attribute vectors (no format {VECTORS_FORMAT!r} in it).")
        vectors = {name: check_vector(handle.get_tensor(name), name=name) for name in handle.keys()}  # noqa: SIM118 (a safetensors handle, not a dict)
    return vectors, metadata.get("weights_sha256") or None


__all__ = [
    "ATTRIBUTE_VECTORS_FILE",
    "analogy_latent",
    "attribute_vector",
    "check_strength",
    "check_vector",
    "load_attribute_vectors",
    "save_attribute_vectors",
    "shift_latents",
]
