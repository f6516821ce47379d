"""twrvae: text VAEs without posterior collapse (TWR-VAE, HR-VAE and their baselines) for Hugging Face transformers.

Importing the package registers `TWRVAEConfig` / `TWRVAEModel` (language model) and `TWRCVAEConfig` / `TWRCVAEModel`
(dialogue response generation) and the DialogWAE, iVAE and SeqGAN baselines (`DialogWAEConfig` / `DialogWAEModel`,
`IVAEConfig` / `IVAEModel`, `SeqGANConfig` / `SeqGANModel`) with `AutoConfig` and `AutoModel`, and marks them
for `save_pretrained` to write their source and an `auto_map`, so that a saved folder also loads with
`trust_remote_code=True` where this package is not installed. Saved models also name the "text-vae" pipeline
(`TextVAEPipeline`) in their config, for the same remote-code load; importing the package registers the task with
transformers' `PIPELINE_REGISTRY` (its own class serves `pipeline("text-vae", ...)`).
"""

from transformers import AutoConfig, AutoModel

from .checkpoint_checks import check_model_folder, check_tokenizer
from .configuration_dialogwae import DIALOGWAE_PRESETS, DialogWAEConfig
from .configuration_ivae import IVAE_PRESETS, IVAEConfig
from .configuration_seqgan import SEQGAN_PRESETS, SeqGANConfig
from .configuration_twrcvae import CVAE_PRESETS, TWRCVAEConfig
from .configuration_twrvae import PRESETS, TWRVAEConfig
from .distributions import DiagonalGaussianDistribution
from .generation_twrvae import TWRVAEDecoderCache, interpolate_latents
from .modeling_dialogwae import DialogWAEModel, DialogWAEOutput, DialogWAEPreTrainedModel
from .modeling_ivae import IVAEModel
from .modeling_seqgan import SeqGANModel, SeqGANOutput, SeqGANPreTrainedModel
from .modeling_twrcvae import TWRCVAEModel, TWRCVAEOutput, TWRCVAEPreTrainedModel
from .modeling_twrvae import TWRVAEModel, TWRVAEOutput, TWRVAEPreTrainedModel
from .pipeline_twrvae import TextVAEPipeline  # registers the "text-vae" task (transformers.pipelines: ~0.05 s more)
from .tokenization_twrvae import train_tokenizer

for _config, _model in (
    (TWRVAEConfig, TWRVAEModel),
    (TWRCVAEConfig, TWRCVAEModel),
    (DialogWAEConfig, DialogWAEModel),
    (IVAEConfig, IVAEModel),
    (SeqGANConfig, SeqGANModel),
):
    AutoConfig.register(_config.model_type, _config, exist_ok=True)
    AutoModel.register(_config, _model, exist_ok=True)
    _config.register_for_auto_class()
    _model.register_for_auto_class("AutoModel")
del _config, _model

__version__ = "0.1.0"


__all__ = [
    "CVAE_PRESETS",
    "DIALOGWAE_PRESETS",
    "DialogWAEConfig",
    "DialogWAEModel",
    "DialogWAEOutput",
    "DialogWAEPreTrainedModel",
    "IVAE_PRESETS",
    "IVAEConfig",
    "IVAEModel",
    "PRESETS",
    "SEQGAN_PRESETS",
    "SeqGANConfig",
    "SeqGANModel",
    "SeqGANOutput",
    "SeqGANPreTrainedModel",
    "DiagonalGaussianDistribution",
    "TWRCVAEConfig",
    "TWRCVAEModel",
    "TWRCVAEOutput",
    "TWRCVAEPreTrainedModel",
    "TWRVAEDecoderCache",
    "TWRVAEConfig",
    "TWRVAEModel",
    "TWRVAEOutput",
    "TWRVAEPreTrainedModel",
    "TextVAEPipeline",
    "check_model_folder",
    "check_tokenizer",
    "interpolate_latents",
    "train_tokenizer",
]
