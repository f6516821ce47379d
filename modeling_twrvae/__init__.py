"""twrvae: text VAEs without posterior collapse (TWR-VAE, HR-VAE and their baselines) for Hugging Face transformers.

Importing the package registers `TWRVAEConfig` / `TWRVAEModel` (language model) and `TWRCVAEConfig` / `TWRCVAEModel`
(dialogue response generation) and the DialogWAE and iVAE baselines (`DialogWAEConfig` / `DialogWAEModel`, `IVAEConfig` /
`IVAEModel`) with `AutoConfig`
and `AutoModel`, and marks them
for `save_pretrained` to write their source and an `auto_map`, so that a saved folder also loads with
`trust_remote_code=True` where this package is not installed. Saved models also name the "text-vae" pipeline
(`TextVAEPipeline`) in their config, for the same remote-code load; importing the package registers the task with
transformers' `PIPELINE_REGISTRY` (its own class serves `pipeline("text-vae", ...)`).
"""

from transformers import AutoConfig, AutoModel

from .checkpoint_checks import check_model_folder, check_tokenizer
from .configuration_dialogwae import DIALOGWAE_PRESETS, DialogWAEConfig
from .configuration_ivae import IVAE_PRESETS, IVAEConfig
from .configuration_twrcvae import CVAE_PRESETS, TWRCVAEConfig
from .configuration_twrvae import PRESETS, TWRVAEConfig
from .distributions import DiagonalGaussianDistribution
from .generation_twrvae import TWRVAEDecoderCache, interpolate_latents
from .modeling_dialogwae import DialogWAEModel, DialogWAEOutput, DialogWAEPreTrainedModel
from .modeling_ivae import IVAEModel
from .modeling_twrcvae import TWRCVAEModel, TWRCVAEOutput, TWRCVAEPreTrainedModel
from .modeling_twrvae import TWRVAEModel, TWRVAEOutput, TWRVAEPreTrainedModel
from .pipeline_twrvae import TextVAEPipeline  # registers the "text-vae" task (transformers.pipelines: ~0.05 s more)
from .tokenization_twrvae import train_tokenizer

AutoConfig.register(TWRVAEConfig.model_type, TWRVAEConfig, exist_ok=True)
AutoModel.register(TWRVAEConfig, TWRVAEModel, exist_ok=True)
TWRVAEConfig.register_for_auto_class()
TWRVAEModel.register_for_auto_class("AutoModel")
AutoConfig.register(TWRCVAEConfig.model_type, TWRCVAEConfig, exist_ok=True)
AutoModel.register(TWRCVAEConfig, TWRCVAEModel, exist_ok=True)
TWRCVAEConfig.register_for_auto_class()
TWRCVAEModel.register_for_auto_class("AutoModel")
AutoConfig.register(DialogWAEConfig.model_type, DialogWAEConfig, exist_ok=True)
AutoModel.register(DialogWAEConfig, DialogWAEModel, exist_ok=True)
DialogWAEConfig.register_for_auto_class()
DialogWAEModel.register_for_auto_class("AutoModel")
AutoConfig.register(IVAEConfig.model_type, IVAEConfig, exist_ok=True)
AutoModel.register(IVAEConfig, IVAEModel, exist_ok=True)
IVAEConfig.register_for_auto_class()
IVAEModel.register_for_auto_class("AutoModel")

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
