"""DialogWAE: its three losses and their updates, save/load (also in a process without the package), `respond`, and
(where `.reference/dialogwae/` holds the authors' code, guxd/DialogWAE) the same numbers as the authors' modules."""

import contextlib
import importlib.util
import json
import sys

import pytest
import torch

from modeling_twrvae import DialogWAEConfig, DialogWAEModel, IVAEConfig, IVAEModel

from dialogue_helpers import batch_of, dailydialog_pairs, dialogue_tokenizer
from helpers import DATA_DIR, REPO_ROOT, run_offline, without_the_package

TINY = {"embedding_size": 8, "hidden_size": 6, "latent_size": 5, "context_window": 4}
REFERENCE = REPO_ROOT / ".reference" / "dialogwae"
REFERENCE_FILES = ("helper.py", "modules.py", "models/dialogwae.py", "models/dialogwae_gmp.py")


@pytest.fixture(scope="module")
def tokenizer():
    return dialogue_tokenizer()


@pytest.fixture(scope="module")
def batch(tokenizer):
    return dict(batch_of(dailydialog_pairs(8), tokenizer))


def tiny(preset: str, vocab_size: int, seed: int = 0) -> DialogWAEModel:
    torch.manual_seed(seed)
    return DialogWAEModel(DialogWAEConfig.from_preset(preset, vocab_size=vocab_size, **TINY))


def parameters_of(*modules):
    return {id(p) for module in modules for p in module.parameters()}


@pytest.mark.parametrize("preset", ["dialogwae", "dialogwae-gmp"])
def test_each_loss_reaches_only_what_its_update_trains(preset, tokenizer, batch):
    model = tiny(preset, len(tokenizer)).train()
    critic = parameters_of(model.critic)
    noise = parameters_of(model.posterior_network, model.posterior_generator, model.prior_network,
                          model.prior_generator)  # fmt: skip
    for loss, allowed in ((model.generator_loss(batch), noise), (model.critic_loss(batch), critic)):
        model.zero_grad(set_to_none=True)
        loss.backward()
        reached = {id(p) for p in model.parameters() if p.grad is not None and p.grad.abs().sum() > 0}
        assert reached and reached <= allowed
    model.zero_grad(set_to_none=True)
    model(**batch).loss.backward()
    reached = {id(p) for p in model.parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert not reached & critic and not reached & parameters_of(model.prior_network, model.prior_generator)
    assert reached & parameters_of(model.decoder) and reached & parameters_of(model.context_encoder)


def test_the_autoencoder_loss_is_the_token_mean_and_the_reconstruction_the_sentence_sum(tokenizer, batch):
    model = tiny("dialogwae", len(tokenizer)).eval()
    torch.manual_seed(1)
    output = model(**batch)
    targets = batch["input_ids"][:, 1:]
    real = batch["attention_mask"][:, 1:].bool()
    token_nll = -torch.log_softmax(output.logits, -1).gather(-1, targets[..., None]).squeeze(-1) * real
    torch.testing.assert_close(output.loss, token_nll.sum() / real.sum())
    torch.testing.assert_close(output.reconstruction_loss, token_nll.sum(1).mean())


def test_the_critic_loss_by_hand(tokenizer, batch):
    """The critic's loss recomputed from the same draws: the means of the critic's scores and the penalty on the
    gradient of the batch-mean score at points between the codes."""
    model = tiny("dialogwae", len(tokenizer)).train()
    generator = torch.Generator().manual_seed(3)
    loss = model.critic_loss(batch, generator=generator)
    generator = torch.Generator().manual_seed(3)
    posterior, prior, context = model._adversarial_codes(batch, generator)
    alpha = torch.rand(prior.shape[0], 1, generator=generator)
    between = (alpha * prior + (1 - alpha) * posterior).detach().requires_grad_(True)
    score = model.critic(torch.cat([between, context], -1)).mean()
    (gradient,) = torch.autograd.grad(score, between)
    expected = (
        model.critic(torch.cat([posterior, context], -1)).mean()
        - model.critic(torch.cat([prior, context], -1)).mean()
        + 10.0 * ((gradient.norm(dim=1) - 1) ** 2).mean()
    )
    torch.testing.assert_close(loss, expected)


def test_a_few_rounds_lower_the_reconstruction_and_keep_everything_finite(tokenizer, batch):
    model = tiny("dialogwae-gmp", len(tokenizer))
    optimizers = model.adversarial_optimizers()
    first = model.adversarial_update([batch, batch], optimizers)
    for _ in range(15):
        last = model.adversarial_update([batch, batch], optimizers)
    assert all(torch.isfinite(torch.tensor(list(values.values()))).all() for values in (first, last))
    assert last["autoencoder_loss"] < first["autoencoder_loss"]


def test_respond_gives_ten_responses_and_save_load_keeps_them(tokenizer, batch, tmp_path):
    model = tiny("dialogwae-gmp", len(tokenizer))
    model.adversarial_update([batch], model.adversarial_optimizers())
    model.eval()
    turns = ["how are you ?", "fine , thanks ."]
    responses = model.respond(turns, tokenizer, generator=torch.Generator().manual_seed(0), max_new_tokens=6)
    assert len(responses) == 10 and all(isinstance(text, str) for text in responses)
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "dialogwae" and config["num_prior_components"] == 3
    assert config["auto_map"]["AutoModel"] == "modeling_dialogwae.DialogWAEModel"
    loaded = DialogWAEModel.from_pretrained(folder).eval()
    again = loaded.respond(turns, tokenizer, generator=torch.Generator().manual_seed(0), max_new_tokens=6)
    assert again == responses
    with pytest.raises(ValueError, match="a list of turns"):
        loaded.respond("how are you ?", tokenizer)

    torch.save({"batch": batch, "loss": loaded(**batch).reconstruction_loss.detach()}, tmp_path / "reference.pt")
    script = without_the_package(
        f"""
        import torch
        from transformers import AutoModel, AutoTokenizer
        reference = torch.load({str(tmp_path / "reference.pt")!r})
        model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        with torch.no_grad():
            loss = model(**reference["batch"]).reconstruction_loss
        assert torch.equal(loss, reference["loss"]), (loss, reference["loss"])
        tokenizer = AutoTokenizer.from_pretrained({str(folder)!r}, trust_remote_code=True)
        print(len(model.respond(["hello !"], tokenizer, max_new_tokens=4)))
        """
    )
    done = run_offline(script, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "10"


# ----- the authors' modules -----


@contextlib.contextmanager
def authors_code():
    """The authors' `models.dialogwae` and `models.dialogwae_gmp`, imported as their files import each other (top-level
    `helper` and `modules`); sys.path and sys.modules are as before afterwards."""
    saved_path, saved_modules = list(sys.path), dict(sys.modules)
    sys.path.insert(0, str(REFERENCE))
    try:
        for name in ("helper", "modules", "models"):
            sys.modules.pop(name, None)
        spec = importlib.util.spec_from_file_location("models", REFERENCE / "models" / "__init__.py",
                                                      submodule_search_locations=[str(REFERENCE / "models")])  # fmt: skip
        package = importlib.util.module_from_spec(spec)
        sys.modules["models"] = package
        spec.loader.exec_module(package)
        yield package
    finally:
        sys.path[:] = saved_path
        for name in set(sys.modules) - set(saved_modules):
            del sys.modules[name]
        sys.modules.update(saved_modules)


def authors_names(name: str, mixture: bool) -> str:
    """The authors' name of one of the package's weights."""
    replacements = [
        ("embed_tokens.", "embedder."), ("utterance_encoder.", "utt_encoder.rnn."),
        ("context_encoder.", "context_encoder.rnn."), ("posterior_network.layers.", "post_net.fc."),
        ("posterior_network.mean.", "post_net.context_to_mu."), ("posterior_network.logvar.", "post_net.context_to_logsigma."),
        ("posterior_generator.", "post_generator."), ("prior_network.layers.", "prior_net.fc."),
        ("prior_network.mean.", "prior_net.context_to_mu."), ("prior_network.logvar.", "prior_net.context_to_logsigma."),
        ("prior_network.component_logits.", "prior_net.pi_net."), ("prior_generator.", "prior_generator."),
        ("decoder.", "decoder.rnn."), ("lm_head.", "decoder.out."), ("critic.", "discriminator."),
    ]  # fmt: skip
    for ours, theirs in replacements:
        if name.startswith(ours):
            return theirs + name[len(ours) :]
    raise KeyError(name)


def authors_inputs(batch: dict) -> tuple:
    """The batch as the authors' loop hands it to the model (WAE:train.py:171-174): contexts without `<bos>`."""
    context = batch["context_input_ids"][:, :, 1:]
    utterance_lengths = batch["context_attention_mask"].sum(-1) - 1
    context_lengths = (utterance_lengths > 0).sum(-1)
    return (context, context_lengths, utterance_lengths, batch["context_speakers"], batch["input_ids"],
            batch["attention_mask"].sum(-1))  # fmt: skip


@pytest.mark.skipif(any(not (REFERENCE / f).is_file() for f in REFERENCE_FILES),
                    reason="the DialogWAE authors' code is not in .reference/dialogwae/")  # fmt: skip
@pytest.mark.parametrize("preset", ["dialogwae", "dialogwae-gmp"])
def test_the_same_numbers_as_the_authors_modules(preset, tokenizer):
    pairs = [row for row in dailydialog_pairs(40) if len(row["context"]) == 4][:6]  # whole windows: no empty turns
    batch = dict(batch_of(pairs, tokenizer))
    model = tiny(preset, len(tokenizer))
    mixture = preset == "dialogwae-gmp"
    settings = {"maxlen": 40, "diaglen": 4, "emb_size": 8, "n_hidden": 6, "n_layers": 1, "noise_radius": 0.2,
                "z_size": 5, "lambda_gp": 10, "temp": 1.0, "dropout": 0.5, "clip": 1.0, "lr_ae": 1.0,
                "lr_gan_g": 5e-5, "lr_gan_d": 1e-5, "n_prior_components": 3, "gumbel_temp": 0.1}  # fmt: skip
    with authors_code() as models:
        theirs = (models.DialogWAE_GMP if mixture else models.DialogWAE)(settings, len(tokenizer))
        state = {authors_names(name, mixture): value for name, value in model.state_dict().items()}
        missing, unexpected = theirs.load_state_dict(state, strict=False)
        # the shared embedding and utterance encoder appear under several of their names: one load sets them all
        aliases = ("utt_encoder.", "context_encoder.utt_encoder.", "decoder.embedding.")
        assert not unexpected and all(n.startswith(aliases) or "num_batches_tracked" in n for n in missing), missing
        torch.testing.assert_close(
            theirs.context_encoder.utt_encoder.rnn.weight_hh_l0, model.utterance_encoder.weight_hh_l0
        )
        inputs = authors_inputs(batch)

        model.eval(), theirs.eval()
        with torch.no_grad():
            ours_context = model.encode(batch["input_ids"], batch["attention_mask"], batch["context_input_ids"],
                                        batch["context_attention_mask"], batch["context_speakers"])[1]  # fmt: skip
            their_context = theirs.context_encoder(*inputs[:4])
            torch.testing.assert_close(ours_context, their_context, atol=1e-5, rtol=1e-5)
            if mixture:  # the mixture's draws come from other random calls: compare what decides them
                hidden = model.prior_network.layers(ours_context)
                torch.testing.assert_close(hidden, theirs.prior_net.fc(their_context), atol=1e-5, rtol=1e-5)
                torch.testing.assert_close(
                    model.prior_network.component_logits(hidden), theirs.prior_net.pi_net(hidden)
                )
                torch.testing.assert_close(model.prior_network.mean(hidden), theirs.prior_net.context_to_mu(hidden))
            else:
                torch.manual_seed(5)
                ours = model(**batch).loss
                torch.manual_seed(5)
                their_loss = dict(theirs.valid(*inputs))["valid_loss_AE"]
                assert ours.item() == pytest.approx(their_loss, rel=1e-5)

        if not mixture:  # the adversarial losses in training mode, from the same draws, through the authors' modules
            model.train(), theirs.train()
            theirs.context_encoder.eval()  # as their train_G and train_D do (WAE:models/dialogwae.py:157,184)
            torch.manual_seed(6)
            ours = model.generator_loss(batch).item()
            torch.manual_seed(6)
            with torch.no_grad():
                c = theirs.context_encoder(*inputs[:4])
                x, _ = theirs.utt_encoder(inputs[4][:, 1:], inputs[5] - 1)
                post = theirs.sample_code_post(x, c)
                prior = theirs.sample_code_prior(c)
                their_loss = (theirs.discriminator(torch.cat([prior, c], 1)).mean()
                              - theirs.discriminator(torch.cat([post, c], 1)).mean())  # fmt: skip
            assert ours == pytest.approx(their_loss.item(), rel=1e-4, abs=1e-7)
            torch.manual_seed(7)
            ours = model.critic_loss(batch).item()
            torch.manual_seed(7)  # their train_D's computation (WAE:models/dialogwae.py:189-214), without its updates
            c = theirs.context_encoder(*inputs[:4]).detach()
            x, _ = theirs.utt_encoder(inputs[4][:, 1:], inputs[5] - 1)
            post = theirs.sample_code_post(x, c).detach()
            prior = theirs.sample_code_prior(c).detach()
            value = (
                theirs.discriminator(torch.cat([post, c], 1)).mean()
                - theirs.discriminator(torch.cat([prior, c], 1)).mean()
            )
            alpha = torch.rand(prior.shape[0], 1).expand(prior.size())
            between = (alpha * prior + (1 - alpha) * post).requires_grad_(True)
            (gradient,) = torch.autograd.grad(theirs.discriminator(torch.cat([between, c], 1)).mean(), between)
            value = value + ((gradient.norm(2, dim=1) - 1) ** 2).mean() * 10
            assert ours == pytest.approx(value.item(), rel=1e-4)


# ----- training/train.py and training/evaluate.py -----


def train_dialogwae(output_dir, **options):
    from accelerate.state import AcceleratorState, GradientState

    from modeling_twrvae.commands import train

    settings = {"config": "dialogue/dailydialog-dialogwae", "data_dir": str(DATA_DIR), "max_train_samples": "96",
                "max_eval_samples": "16", "config_overrides": "embedding_size=12,hidden_size=10,latent_size=6",
                "max_train_steps": "4", "eval_steps": "2", "checkpointing_steps": "2", "logging_steps": "1",
                "per_device_train_batch_size": "8", "output_dir": str(output_dir),
                **{key: str(value) for key, value in options.items()}}  # fmt: skip
    argv = [item for key, value in settings.items() for item in (f"--{key}", value)]
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    return train.main(argv)


def test_train_py_trains_dialogwae_in_rounds_and_resumes_exactly(tmp_path):
    from safetensors.torch import load_file

    summary = train_dialogwae(tmp_path / "run")
    assert summary["global_step"] == 4
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if "critic_loss" in r]
    assert len(train_records) == 4 and all(r["autoencoder_loss"] > 0 for r in train_records)
    assert [r["step"] for r in records if "eval_reconstruction_loss" in r] == [2, 4]
    assert isinstance(DialogWAEModel.from_pretrained(tmp_path / "run"), DialogWAEModel)
    assert (tmp_path / "run" / "training_curves.png").is_file()

    # stopped after the checkpoint of update 2 and resumed: the same weights as the run that never stopped
    resumed = tmp_path / "resumed"
    train_dialogwae(resumed, max_train_steps=2)
    train_dialogwae(resumed, resume_from_checkpoint="latest")
    ours, theirs = load_file(tmp_path / "run" / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)

    from modeling_twrvae.commands import evaluate

    results = evaluate.main(["--model_name_or_path", str(tmp_path / "run"), "--dataset", "dailydialog", "--split",
                             "test", "--data_dir", str(DATA_DIR), "--max_samples", "3", "--num_responses", "10",
                             "--max_new_tokens", "4", "--output_file", str(tmp_path / "eval.json")])  # fmt: skip
    assert results["num_contexts"] == 3 and results["reconstruction_loss"] > 0 and "elbo_nll" not in results
    assert all(len(example["responses"]) == 5 for example in results["examples"])  # the first 5 of 10 shown


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"gradient_accumulation_steps": 2}, "--gradient_accumulation_steps does not apply to DialogWAE"),
        ({"metric_for_best_model": "elbo_nll"}, "DialogWAE, iVAE and SeqGAN have no ELBO"),
        ({"mixed_precision": "bf16"}, "DialogWAE, iVAE and SeqGAN train in fp32"),
        ({"critic_updates": 0}, "--critic_updates must be at least 1"),
    ],
)
def test_train_py_refuses_what_dialogwae_cannot_take(options, message, tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_dialogwae(tmp_path / "run", **options)
    assert message in capsys.readouterr().err


# ----- iVAE -----


def tiny_ivae(vocab_size: int, seed: int = 0) -> IVAEModel:
    torch.manual_seed(seed)
    return IVAEModel(IVAEConfig.from_preset("ivae", vocab_size=vocab_size, **TINY))


def test_ivae_s_losses_are_the_dual_form_of_the_kl(tokenizer, batch):
    """nu climbs E_q[nu] - E_p[exp(nu)]; the generators lower the same estimate; nu's updates all read the round's
    batch."""
    model = tiny_ivae(len(tokenizer)).train()
    generator = torch.Generator().manual_seed(2)
    loss = model.generator_loss(batch, generator=generator)
    generator = torch.Generator().manual_seed(2)
    posterior, prior, context = model._adversarial_codes(batch, generator)
    nu_posterior = model.critic(torch.cat([posterior, context], -1)).mean()
    nu_prior = torch.exp(model.critic(torch.cat([prior, context], -1))).mean()
    torch.testing.assert_close(loss, nu_posterior - nu_prior)
    generator = torch.Generator().manual_seed(2)
    torch.testing.assert_close(model.critic_loss(batch, generator=generator), nu_prior - nu_posterior)
    assert model.batches_per_round(5) == 1 and model.critic_batches([batch], 5) == [batch] * 5
    with pytest.raises(ValueError, match="iVAE's prior network is one Gaussian"):
        IVAEConfig(num_prior_components=3)


def test_train_py_trains_ivae_and_it_loads_by_itself(tmp_path):
    summary = train_dialogwae(tmp_path / "run", config="dialogue/dailydialog-ivae", max_train_steps=3, eval_steps=3,
                              checkpointing_steps=3)  # fmt: skip
    assert summary["global_step"] == 3
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len([r for r in records if "critic_loss" in r]) == 3
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model_type"] == "ivae" and config["auto_map"]["AutoModel"] == "modeling_ivae.IVAEModel"
    script = without_the_package(
        f"""
        from transformers import AutoModel, AutoTokenizer
        model = AutoModel.from_pretrained({str(tmp_path / "run")!r}, trust_remote_code=True).eval()
        tokenizer = AutoTokenizer.from_pretrained({str(tmp_path / "run")!r}, trust_remote_code=True)
        print(type(model).__name__, len(model.respond(["hello !"], tokenizer, max_new_tokens=4)))
        """
    )
    done = run_offline(script, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1].endswith("IVAEModel 10")


IVAE_REFERENCE = REPO_ROOT / ".reference" / "ivae"


@pytest.mark.skipif(any(not (IVAE_REFERENCE / f).is_file() for f in ("models_dailydial.py", "utils_dailydial.py")),
                    reason="the iVAE authors' dialogue code is not in .reference/ivae/")  # fmt: skip
def test_ivae_gives_the_same_numbers_as_the_authors_modules(tokenizer):
    pairs = [row for row in dailydialog_pairs(40) if len(row["context"]) == 4][:6]
    batch = dict(batch_of(pairs, tokenizer))
    model = tiny_ivae(len(tokenizer))
    settings = {"maxlen": 40, "diaglen": 4, "emb_size": 8, "n_hidden": 6, "n_layers": 1, "noise_radius": 0.2,
                "z_size": 5, "temp": 1.0, "dropout": 0.5, "clip": 1.0, "lr_end2end_lstm": 1.0,
                "lr_end2end_fc": 5e-5, "lr_nu": 1e-5}  # fmt: skip
    saved_path, saved_modules = list(sys.path), dict(sys.modules)
    sys.path.insert(0, str(IVAE_REFERENCE))
    try:
        import models_dailydial

        theirs = models_dailydial.ILVM(settings, len(tokenizer))
    finally:
        sys.path[:] = saved_path
        for name in set(sys.modules) - set(saved_modules):
            del sys.modules[name]
    renames = {"post_net.": "recognition_net.", "discriminator.": "nu_net."}
    state = {}
    for name, value in model.state_dict().items():
        theirs_name = authors_names(name, mixture=False)
        for old, new in renames.items():
            theirs_name = theirs_name.replace(old, new) if theirs_name.startswith(old) else theirs_name
        state[theirs_name] = value
    missing, unexpected = theirs.load_state_dict(state, strict=False)
    aliases = ("utt_encoder.", "context_encoder.utt_encoder.", "decoder.embedding.")
    assert not unexpected and all(n.startswith(aliases) or "num_batches_tracked" in n for n in missing), missing
    inputs = authors_inputs(batch)

    model.train(), theirs.train()
    theirs.context_encoder.eval()  # their g and nu phases (IVAE:dialog_dailydial/train_dailydial.py:282,312)
    torch.manual_seed(8)
    ours = model.generator_loss(batch).item()
    torch.manual_seed(8)
    with torch.no_grad():
        c = theirs.context_encoder(*inputs[:4])
        x, _ = theirs.utt_encoder(inputs[4][:, 1:], inputs[5] - 1)
        their_loss = (theirs.nu_forward(theirs.sample_code_post(x, c), c).mean()
                      - torch.exp(theirs.nu_forward(theirs.sample_code_prior(c), c)).mean())  # fmt: skip
    assert ours == pytest.approx(their_loss.item(), rel=1e-5)
    torch.manual_seed(9)
    ours = model.critic_loss(batch).item()
    torch.manual_seed(9)
    with torch.no_grad():
        z_x, z = theirs.sample_code_post(x, c), theirs.sample_code_prior(c)
        their_loss = torch.exp(theirs.nu_forward(z, c)).mean() - theirs.nu_forward(z_x, c).mean()
    assert ours == pytest.approx(their_loss.item(), rel=1e-5)
