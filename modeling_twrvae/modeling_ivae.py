"""iVAE for dialogue (Fang et al., EMNLP 2019): DialogWAE's networks, with the KL between the implicit posterior and
the implicit prior estimated through its dual form, a baseline of TWR-VAE's Table 5.

KL(q || p) = max over functions nu of E_q[nu(z, c)] - E_p[exp(nu(z, c))] + 1. The network nu (DialogWAE's critic)
climbs that bound on the codes of a batch, and the noise networks and generators lower the estimate: the prior's
codes move to where the posterior's are. Citations `IVAE:path:line` are the authors' code, fangleai/Implicit-LVM at
commit ac2d587 (its dialogue variant, `dialog_dailydial/`; the mutual-information variant iVAE_MI is not this one).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .configuration_ivae import IVAEConfig
from .modeling_dialogwae import DialogWAEModel


class IVAEModel(DialogWAEModel):
    """iVAE (`ivae`): DialogWAE's model whose critic is the dual-form KL's nu."""

    config_class = IVAEConfig
    base_model_prefix = "ivae"

    def __init__(self, config: IVAEConfig):
        super().__init__(config)

    def generator_loss(self, batch: dict, generator=None) -> torch.Tensor:
        """The dual-form estimate of KL(q || p) that the noise networks and generators lower, mean nu(z, c) -
        mean exp(nu(z~, c)) (IVAE:dialog_dailydial/train_dailydial.py:281-299); nu's own weights get no gradient."""
        posterior, prior, context = self._adversarial_codes(batch, generator)
        with self._critic_frozen():
            return self._critic(posterior, context) - self._nu_exp(prior, context)

    def critic_loss(self, batch: dict, generator=None) -> torch.Tensor:
        """nu's loss, the negated dual bound: mean exp(nu(z~, c)) - mean nu(z, c), on fresh draws of both codes
        (IVAE:dialog_dailydial/train_dailydial.py:311-325). No gradient penalty."""
        posterior, prior, context = self._adversarial_codes(batch, generator)
        return self._nu_exp(prior.detach(), context) - self._critic(posterior.detach(), context)

    def _nu_exp(self, latents: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.critic(torch.cat([latents, context], dim=-1))).mean()

    def batches_per_round(self, critic_updates: int) -> int:
        """One: iVAE's nu takes all its updates on the round's batch."""
        return 1

    def critic_batches(self, batches: Sequence[dict], critic_updates: int) -> list[dict]:
        """The round's batch, once for each of nu's updates (5, IVAE:dialog_dailydial/train_dailydial.py:31,315)."""
        return [batches[0]] * critic_updates


__all__ = ["IVAEModel"]
