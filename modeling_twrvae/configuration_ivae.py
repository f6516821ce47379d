"""Configuration of iVAE for dialogue (Fang et al., EMNLP 2019), a baseline of TWR-VAE's Table 5."""

from __future__ import annotations

from .configuration_dialogwae import DialogWAEConfig

# Citations `IVAE:path:line` are the authors' code, fangleai/Implicit-LVM at commit ac2d587.
IVAE_PRESETS: dict[str, dict] = {"ivae": {}}


class IVAEConfig(DialogWAEConfig):
    r"""
    Configuration of an [`IVAEModel`]: the implicit latent-variable model of Fang et al. (EMNLP 2019) for dialogue,
    in the form of its authors' dialogue code (IVAE:dialog_dailydial/models_dailydial.py:260-361). Its networks are
    DialogWAE's with a Gaussian prior network, and the critic becomes the network nu of the KL's dual form; the fields
    are [`DialogWAEConfig`]'s (`num_prior_components` must stay 1; `gradient_penalty_weight` is not used).
    """

    model_type = "ivae"

    num_prior_components: int = 1
    gradient_penalty_weight: float = 0.0

    def validate_implicit_prior(self) -> None:
        if self.num_prior_components != 1:
            raise ValueError(
                f"iVAE's prior network is one Gaussian (IVAE:dialog_dailydial/models_dailydial.py:280), got "
                f"num_prior_components={self.num_prior_components!r}: the mixture is DialogWAE-GMP's."
            )

    @classmethod
    def named_presets(cls) -> dict[str, dict]:
        return IVAE_PRESETS


__all__ = ["IVAE_PRESETS", "IVAEConfig"]
