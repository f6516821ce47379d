"""twrvae: text VAEs without posterior collapse (TWR-VAE, HR-VAE and their baselines) for Hugging Face transformers.

Importing the package registers `TWRVAEConfig` and `TWRVAEModel` with `AutoConfig` and `AutoModel`, and marks them
for `save_pretrained` to write their source and an `auto_map`, so that a saved folder also loads with
`trust_remote_code=True` where this package is not installed. It also registers the "text-vae" pipeline
(`TextVAEPipeline`), which saved models name in their config for the same remote-code load.
"""

from transformers import AutoConfig, AutoModel
from transformers.pipelines import PIPELINE_REGISTRY

from .checkpoint_checks import check_model_folder, check_tokenizer
from .configuration_twrvae import PRESETS, TWRVAEConfig
from .distributions import DiagonalGaussianDistribution
from .generation_twrvae import TWRVAEDecoderCache, interpolate_latents
from .modeling_twrvae import TWRVAEModel, TWRVAEOutput, TWRVAEPreTrainedModel
from .pipeline_twrvae import TEXT_VAE_TASK, TextVAEPipeline
from .tokenization_twrvae import train_tokenizer

AutoConfig.register(TWRVAEConfig.model_type, TWRVAEConfig, exist_ok=True)
AutoModel.register(TWRVAEConfig, TWRVAEModel, exist_ok=True)
TWRVAEConfig.register_for_auto_class()
TWRVAEModel.register_for_auto_class("AutoModel")
if TEXT_VAE_TASK not in PIPELINE_REGISTRY.supported_tasks:
    PIPELINE_REGISTRY.register_pipeline(TEXT_VAE_TASK, pipeline_class=TextVAEPipeline, pt_model=AutoModel, type="text")

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "DiagonalGaussianDistribution",
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
