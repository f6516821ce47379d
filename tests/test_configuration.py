import re

import pytest

from modeling_twrvae import PRESETS, TWRCVAEConfig, TWRVAEConfig


def test_defaults_are_the_twr_vae_paper_settings():
    config = TWRVAEConfig()
    assert config.model_type == "twrvae"
    assert (config.embedding_size, config.hidden_size, config.latent_size, config.num_layers) == (512, 256, 32, 1)
    assert (config.rnn_type, config.dropout, config.latent_mode) == ("lstm", 0.5, "last")
    assert (config.kl_regularizer, config.kl_timestep_fraction, config.posterior_input) == ("timestep_wise", 1.0, "h")
    assert (config.pad_token_id, config.unk_token_id, config.bos_token_id, config.eos_token_id) == (0, 1, 2, 3)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("twr-vae", {"latent_mode": "last", "kl_regularizer": "timestep_wise"}),
        ("twr-vae-mean", {"latent_mode": "mean"}),
        ("twr-vae-sum", {"latent_mode": "sum"}),
        (
            "hr-vae",
            {
                "num_layers": 2,
                "posterior_input": "hc",
                "latent_size": 1024,  # [h; c] of both layers at hidden 256, as HR-VAE's code
                "decoder_init": "split",
                "decoder_latent_input": "last_layer",
                "decoder_output_dropout": 0.0,
            },
        ),
        ("hr-vae-inputless", {"latent_size": 1024, "decoder_input": "inputless"}),
        ("vae-lstm", {"kl_regularizer": "last", "latent_mode": "last"}),
    ],
)
def test_presets(name, expected):
    config = TWRVAEConfig.from_preset(name, vocab_size=500)
    assert config.vocab_size == 500
    for key, value in expected.items():
        assert getattr(config, key) == value, key


def test_preset_overrides_and_unknown_name():
    assert TWRVAEConfig.from_preset("hr-vae", num_layers=1, latent_size=512).num_layers == 1
    assert TWRVAEConfig.from_preset("hr-vae", hidden_size=128).latent_size == 512  # derived, not an error
    with pytest.raises(ValueError, match="Unknown preset 'bert'.*twr-vae"):
        TWRVAEConfig.from_preset("bert")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rnn_type": "transformer"}, r"`rnn_type` must be one of \['lstm', 'gru', 'rnn'\]"),
        ({"latent_mode": "max"}, r"`latent_mode` must be one of \['last', 'mean', 'sum'\]"),
        ({"kl_regularizer": "none"}, r"`kl_regularizer` must be one of"),
        ({"posterior_input": "c"}, r"`posterior_input` must be one of \['h', 'hc'\]"),
        ({"decoder_input": "none"}, r"`decoder_input` must be one of \['standard', 'inputless'\]"),
        ({"decoder_init": "zeros"}, r"`decoder_init` must be one of \['linear', 'split'\]"),
        ({"kl_timestep_fraction": 0.0}, r"`kl_timestep_fraction` must be in \(0, 1\]"),
        ({"kl_timestep_fraction": 1.5}, r"`kl_timestep_fraction` must be in \(0, 1\]"),
        ({"dropout": 1.0}, r"`dropout` must be in \[0, 1\)"),
        ({"decoder_output_dropout": -0.5}, r"`decoder_output_dropout` must be in \[0, 1\)"),
        ({"decoder_latent_input": "first"}, r"`decoder_latent_input` must be one of \['full', 'last_layer'\]"),
        ({"decoder_latent_input": "last_layer"}, r"needs `decoder_init='split'` and `latent_size=512`"),
        ({"word_dropout": -0.1}, r"`word_dropout` must be in \[0, 1\]"),
        ({"latent_size": 0}, r"`latent_size` must be a positive integer"),
        ({"num_layers": 0}, r"`num_layers` must be a positive integer"),
        ({"rnn_type": "gru", "posterior_input": "hc"}, r"posterior_input='hc'.*use `posterior_input='h'`"),
        ({"decoder_init": "split", "latent_size": 100}, r"`latent_size` must be 512 .* or 512"),
        ({"unk_token_id": 10000}, r"`unk_token_id` must be a token id in \[0, vocab_size=10000\)"),
        ({"eos_token_id": 0}, r"must all differ"),
    ],
)
def test_out_of_range_values_raise_value_error_naming_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TWRVAEConfig(**kwargs)


def test_docstring_documents_every_field():
    fields = [name for name in TWRVAEConfig.__annotations__ if not name.startswith("_")]
    documented = set(re.findall(r"^        (\w+) \(`", TWRVAEConfig.__doc__, flags=re.MULTILINE))
    assert fields and set(fields) <= documented, set(fields) - documented


def test_every_preset_builds_a_valid_config():
    for name in PRESETS:
        config = TWRVAEConfig.from_preset(name)
        assert TWRVAEConfig.from_dict(config.to_dict()).to_dict() == config.to_dict()


@pytest.mark.parametrize("config_class", [TWRVAEConfig, TWRCVAEConfig])
def test_the_rules_are_validate_methods_that_validate_runs(config_class):
    """transformers' convention: each rule is a `validate_*` method, and `validate()` (which `save_pretrained` runs)
    runs them after transformers' own, however the bad value got in."""
    names = [validator.__name__ for validator in config_class._own_validators()]
    assert names[:3] == ["validate_sizes", "validate_choices", "validate_rates"], names
    config = config_class(vocab_size=20)
    config.validate()
    object.__setattr__(config, "kl_regularizer", "sometimes")  # past the checked assignment
    with pytest.raises(ValueError, match="`kl_regularizer` must be one of"):
        config.validate()
