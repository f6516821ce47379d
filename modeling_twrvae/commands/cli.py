"""The `twrvae` command line (also `python -m modeling_twrvae`).

    twrvae sample MODEL [-n N] [--temperature T] [--sampler prior|aggregate] [--top-p P | --num-beams B] [--seed S]
    twrvae reconstruct MODEL [TEXT ...]                  (or one text a line on standard input)
    twrvae interpolate MODEL TEXT_A TEXT_B [--steps K] [--method slerp|linear]
    twrvae encode MODEL [--output FILE.safetensors]      (texts on standard input -> posterior means)
    twrvae score MODEL [--iw-samples K]                  (texts on standard input -> -ELBO, or IW-NLL with k samples)
    twrvae attribute-vector MODEL --with FILE --without FILE (--output VEC.safetensors | --into-model NAME)
                                                         (mean posterior mode of texts with a property minus without)
    twrvae shift MODEL --vector VEC.safetensors|NAME [--strength S] [TEXT ...]   (reconstructions moved along it)
    twrvae analogy MODEL TEXT_A TEXT_B TEXT_C [--strength S]                 (a : b :: c : ?, z_c + S (z_b - z_a))
    twrvae evaluate ARGS...                              (training/evaluate.py, same arguments)
    twrvae train ARGS...                                 (training/train.py, same arguments)

MODEL is a folder saved with `save_pretrained` or a Hub repository id (read from the local cache when offline).
Texts are UTF-8 (a byte-order mark on standard input is ignored). Output is plain text, one item a line; `--json`
prints one JSON object a line instead. An error is one line on standard error and exit status 2; `--debug` shows its
traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..file_utils import atomic_write_bytes
from ..texts import check_texts, posterior_means
from .output_files import check_output_files
from .tokenizer_files import load_tokenizer

EXIT_ERROR = 2
# `twrvae train|evaluate|publish ARGS` is `python training/{train,evaluate,publish}.py ARGS`: the same main.
SCRIPTS = {name: f"modeling_twrvae.commands.{name}" for name in ("train", "evaluate", "publish")}
# The commands use the model's methods directly (the pipeline calls the same ones).


class CommandError(Exception):
    """An error the user can fix; printed as one line."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twrvae", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="One JSON object a line instead of plain text.")
    common.add_argument("--debug", action="store_true", help="Show the traceback of an error.")
    model = argparse.ArgumentParser(add_help=False, parents=[common])
    model.add_argument("model", metavar="MODEL", help="A model folder, or a Hub repository id (cached when offline).")
    model.add_argument("--device", help="torch device (default: cuda when there is one, else cpu).")
    model.add_argument("--revision", help="Hub revision (branch, tag or commit).")
    model.add_argument("--trust-remote-code", action="store_true", help="Use the model's own saved code.")
    decoding = argparse.ArgumentParser(add_help=False)
    decoding.add_argument("--max-new-tokens", type=int, help="Default: the model's generation_config.max_length.")
    choice = decoding.add_mutually_exclusive_group()
    choice.add_argument("--top-p", type=float, help="Nucleus sampling with this p (default: greedy).")
    choice.add_argument("--num-beams", type=int, help="Beam search with this many beams (default: greedy).")
    decoding.add_argument("--seed", type=int, help="Fixes the prior samples and any sampling.")

    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sample = commands.add_parser("sample", parents=[model, decoding], help="Decode latents drawn from the prior.")
    sample.add_argument("-n", "--num-samples", type=int, default=5)
    sample.add_argument("--temperature", type=float, default=1.0, help="Scales the prior: z ~ N(0, T^2 I).")
    sample.add_argument(
        "--sampler",
        choices=("prior", "aggregate"),
        default="prior",
        help="Where the latents come from: the prior N(0, I), or the model's fitted aggregate posterior (a Gaussian "
        "mixture over the training texts' posterior means; train.py --aggregate_posterior_components K fits one).",
    )
    reconstruct = commands.add_parser("reconstruct", parents=[model, decoding], help="Text -> posterior mode -> text.")
    reconstruct.add_argument("texts", nargs="*", metavar="TEXT", help="Default: one text a line on standard input.")
    interpolate = commands.add_parser("interpolate", parents=[model, decoding], help="Decode a path between texts.")
    interpolate.add_argument("text_a", metavar="TEXT_A")
    interpolate.add_argument("text_b", metavar="TEXT_B")
    interpolate.add_argument("--steps", type=int, default=11, help="Points on the path, both ends included.")
    interpolate.add_argument("--method", choices=["linear", "slerp"], default="linear")
    encode = commands.add_parser("encode", parents=[model], help="Texts on standard input -> posterior means.")
    encode.add_argument("--output", help="Write a .safetensors file (posterior_mean, posterior_logvar) instead.")
    encode.add_argument("--overwrite", action="store_true", help="Replace --output if it exists.")
    encode.add_argument("--batch-size", type=int, default=64)
    score = commands.add_parser("score", parents=[model], help="Texts on standard input -> -ELBO or IW-NLL (nats).")
    score.add_argument("--iw-samples", type=int, help="Importance-weighted NLL with k samples (default: -ELBO).")
    score.add_argument("--seed", type=int, default=0)
    score.add_argument("--batch-size", type=int, default=4)
    add_latent_arithmetic_commands(commands, model, decoding)
    for name in SCRIPTS:
        commands.add_parser(name, add_help=False, help=f"training/{name}.py with the same arguments.")
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if argv and argv[0] in SCRIPTS:
        return _guarded(lambda: _run_script(argv[0], [a for a in argv[1:] if a != "--debug"]), argv[0], debug)
    args = build_parser().parse_args(argv)
    if not args.debug:
        _quiet()
    return _guarded(lambda: COMMANDS[args.command](args), args.command, args.debug)


def _guarded(run, command: str, debug: bool) -> int:
    try:
        run()
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `twrvae sample ... | head`
        sys.stderr.close()
        return 0
    except Exception as error:
        if debug:
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"twrvae {command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _quiet() -> None:
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def _run_script(name: str, argv: list[str]) -> None:
    import importlib

    importlib.import_module(SCRIPTS[name]).main(argv)


class Loaded:
    """A model and its tokenizer, as the commands use them."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer

    @property
    def max_tokens(self) -> int | None:
        return getattr(self.model.generation_config, "max_length", None)


def load_model(args) -> Loaded:
    """The model and tokenizer of `args.model`, with one-line errors for what users get wrong."""
    import torch
    from transformers import AutoConfig, AutoModel

    from .. import check_tokenizer

    source = args.model
    hub = {"revision": args.revision, "trust_remote_code": args.trust_remote_code}
    path = Path(source)
    if not path.exists() and (source.startswith((".", "/", "~")) or source.count("/") > 1):
        raise CommandError(f"{source}: no such folder. MODEL is a folder saved with save_pretrained or a Hub repo id.")
    if path.exists() and not path.is_dir():
        kind = "a file" if path.is_file() else "a FIFO, a device or a socket"
        raise CommandError(
            f"{source} is {kind}, not a model folder: MODEL is a folder saved with save_pretrained (it holds "
            "config.json, the weights and tokenizer.json) or a Hub repo id."
        )
    if path.is_dir() and not (path / "config.json").is_file():
        raise CommandError(f"{source} is a folder without config.json: it is not a saved model.")
    try:
        config = AutoConfig.from_pretrained(source, **hub)
    except OSError as error:
        if path.exists():
            raise
        offline = " (offline: only models already in the Hugging Face cache are found)" if _offline() else ""
        raise CommandError(
            f"{source} is neither a model folder nor a Hub repository that could be read{offline}: {error}"
        ) from error
    except TypeError as error:  # a value of the wrong type in config.json ("dropout": "0.5")
        raise CommandError(f"{source}: config.json holds a value of the wrong type ({error}).") from error
    if config.model_type != "twrvae":
        raise CommandError(f"{source} holds a {config.model_type!r} model, not a twrvae text VAE.")
    tokenizer = load_tokenizer(source, revision=args.revision)  # before the weights: a missing one fails at once
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        kind = torch.device(device).type
    except RuntimeError as error:
        raise CommandError(
            f"--device {device} is not a device torch knows ({error}): use cpu, cuda or cuda:N."
        ) from None
    if kind == "meta":
        raise CommandError("--device meta holds no values, so nothing can be computed on it: use cpu, cuda or cuda:N.")
    try:
        model = AutoModel.from_pretrained(source, **hub)
    except (RuntimeError, MemoryError) as error:  # sizes in config.json that cannot be allocated
        message = " ".join(str(error).split()) or type(error).__name__
        raise CommandError(
            f"{source}: the model could not be built from its config.json ({message}); its sizes are damaged or "
            "too large for this machine's memory."
        ) from error
    model = model.to(device).eval()
    check_tokenizer(tokenizer, model.config)
    return Loaded(model, tokenizer)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def read_texts(given: list[str] | None = None) -> list[str]:
    """The texts given as arguments, else one text a line on standard input (blank lines skipped)."""
    if given:
        return given
    if sys.stdin is None or sys.stdin.isatty():
        raise CommandError("no input: give the texts as arguments, or one text a line on standard input.")
    texts = [line.strip() for line in _standard_input().split("\n") if line.strip()]
    if not texts:
        raise CommandError("no input: standard input held no text (one text a line).")
    return texts


def _standard_input() -> str:
    """Standard input as UTF-8 text, a byte-order mark dropped; bytes that are not UTF-8 are an error naming the
    line (the text stream would pass them on as characters that no tokenizer takes)."""
    raw = getattr(sys.stdin, "buffer", None)
    if raw is None:  # a text stream with no bytes beneath it (embedding, tests)
        return sys.stdin.read().removeprefix("\ufeff")
    data = raw.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise CommandError(
            f"standard input, line {line}, is not UTF-8 ({error.reason} at byte {data[error.start : error.end]!r}): "
            "the texts must be UTF-8. Convert them, e.g. `iconv -f latin1 -t utf-8 FILE | twrvae ...`."
        ) from error


# What one command decodes at once, refused above these before any work (all of it is held in memory, and a
# request far beyond them would run until the machine's memory or patience ran out).
MAX_SAMPLES = 10_000
MAX_STEPS = 1_000
MAX_IW_SAMPLES = 100_000


def check_at_most(option: str, value: int, limit: int, advice: str) -> None:
    if value > limit:
        raise CommandError(f"{option} must be at most {limit:,}, got {value:,}: {advice}")


def generate_kwargs(args, vae: Loaded | None = None) -> dict:
    kwargs = {}
    if args.max_new_tokens is not None:
        if args.max_new_tokens < 1:
            raise CommandError(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}.")
        limit = (vae.max_tokens if vae is not None else None) or MAX_STEPS
        check_at_most("--max-new-tokens", args.max_new_tokens, limit,
                      "the model writes sentences of at most that many tokens (its generation_config.max_length).")  # fmt: skip
        kwargs["max_new_tokens"] = args.max_new_tokens
    if args.top_p is not None:
        if not 0 < args.top_p <= 1:
            raise CommandError(f"--top-p must be in (0, 1], got {args.top_p}.")
        kwargs.update(do_sample=True, top_p=args.top_p)
    if args.num_beams is not None:
        if args.num_beams < 1:
            raise CommandError(f"--num-beams must be >= 1, got {args.num_beams}.")
        kwargs["num_beams"] = args.num_beams
    if args.seed is not None:
        import torch

        torch.manual_seed(args.seed)
    return kwargs


def emit(args, records: list[dict], plain) -> None:
    for record in records:
        print(json.dumps(record, ensure_ascii=False) if args.json else plain(record))


def _generator(vae: Loaded, seed: int | None):
    import torch

    return None if seed is None else torch.Generator(device=vae.model.device).manual_seed(seed)


def _no_mixture(model) -> str:
    try:
        model.sample_aggregate_posterior(1)
    except ValueError as error:
        return str(error)
    return "the model has no aggregate-posterior mixture."


def cmd_sample(args) -> None:
    import math

    if args.num_samples < 1:
        raise CommandError(f"-n must be >= 1, got {args.num_samples}.")
    check_at_most("-n", args.num_samples, MAX_SAMPLES,
                  "one call decodes all its samples together; run it several times with other --seed values.")  # fmt: skip
    if not math.isfinite(args.temperature) or args.temperature < 0:
        raise CommandError(f"--temperature must be a finite number >= 0, got {args.temperature}.")
    vae = load_model(args)
    options = generate_kwargs(args, vae)
    if args.sampler == "aggregate" and vae.model.aggregate_posterior is None:
        raise CommandError(f"--sampler aggregate: {_no_mixture(vae.model)}")
    texts = vae.model.sample(args.num_samples, vae.tokenizer, temperature=args.temperature,
                             generator=_generator(vae, args.seed), sampler=args.sampler, **options)  # fmt: skip
    emit(args, [{"text": text} for text in texts], lambda r: r["text"])


def cmd_reconstruct(args) -> None:
    texts = read_texts(args.texts)
    vae = load_model(args)
    check_texts(texts, vae.tokenizer, vae.max_tokens)
    outputs = vae.model.reconstruct(texts, vae.tokenizer, **generate_kwargs(args, vae))
    records = [{"text": text, "reconstruction": output} for text, output in zip(texts, outputs, strict=True)]
    emit(args, records, lambda r: r["reconstruction"])


def cmd_interpolate(args) -> None:
    if args.steps < 2:
        raise CommandError(f"--steps must be >= 2 (both ends included), got {args.steps}.")
    check_at_most("--steps", args.steps, MAX_STEPS, "one call decodes every point of the path together.")
    vae = load_model(args)
    check_texts([args.text_a, args.text_b], vae.tokenizer, vae.max_tokens)
    alphas, texts = vae.model.interpolate(args.text_a, args.text_b, vae.tokenizer, steps=args.steps,
                                          method=args.method, **generate_kwargs(args, vae))  # fmt: skip
    records = [{"alpha": alpha, "text": text} for alpha, text in zip(alphas, texts, strict=True)]
    emit(args, records, lambda r: f"{r['alpha']:.2f}\t{r['text']}")


def _check_batch_size(args) -> None:
    if args.batch_size < 1:
        raise CommandError(f"--batch-size must be >= 1, got {args.batch_size}.")


def check_output(args) -> None:
    """`--output`: a .safetensors file that replaces nothing the user saved (see output_files.py), checked first."""
    if not args.output.endswith(".safetensors"):
        raise CommandError(f"--output must name a .safetensors file, got {args.output!r}.")
    check_output_files([args.output], "--output", args.overwrite, "--overwrite")


def cmd_encode(args) -> None:
    _check_batch_size(args)
    if args.output:
        check_output(args)
    texts = read_texts()
    vae = load_model(args)
    means = posterior_means(vae.model, vae.tokenizer, texts, batch_size=args.batch_size)
    if args.output:
        _save_means(args.output, means, texts)
        print(f"wrote {args.output}: posterior_mean {tuple(means.shape)}", file=sys.stderr)
        return
    for text, mean in zip(texts, means.tolist(), strict=True):
        print(json.dumps({"text": text, "posterior_mean": mean}, ensure_ascii=False))


def _save_means(path: str, means, texts: list[str]) -> None:
    from safetensors.torch import save

    atomic_write_bytes(Path(path), save({"posterior_mean": means.contiguous()}, metadata={"texts": json.dumps(texts)}))


def cmd_score(args) -> None:
    from ..metrics.likelihood import likelihoods

    _check_batch_size(args)
    if args.iw_samples is not None and args.iw_samples < 1:
        raise CommandError(f"--iw-samples must be >= 1, got {args.iw_samples}.")
    if args.iw_samples is not None:
        check_at_most("--iw-samples", args.iw_samples, MAX_IW_SAMPLES,
                      "k = 500 to 5,000 is what the literature reports; more changes the estimate little.")  # fmt: skip
    texts = read_texts()
    vae = load_model(args)
    check_texts(texts, vae.tokenizer, allow_unknown=True)
    samples = args.iw_samples or 1
    ids = vae.tokenizer(texts)["input_ids"]
    result = likelihoods(vae.model, ids, iw_samples=samples, batch_size=args.batch_size,
                         samples_per_pass=min(samples, 125), seed=args.seed, progress=False)  # fmt: skip
    records = []
    for index, text in enumerate(texts):
        record = {"text": text, "elbo_nll": float(result.elbo_nll[index])}
        if args.iw_samples:
            record["iw_nll"] = float(result.iw_nll[index])
        record["num_predicted_tokens"] = int(result.num_predicted_tokens[index])
        records.append(record)
    key = "iw_nll" if args.iw_samples else "elbo_nll"
    emit(args, records, lambda r: f"{r[key]:.3f}\t{r['text']}")


# Latent arithmetic (Optimus, Li et al., 2020): attribute vectors, shifts along them, analogies.

VECTOR_TENSOR = "attribute_vector"
VECTOR_FORMAT = "twrvae-attribute-vector"


def add_latent_arithmetic_commands(commands, model, decoding) -> None:
    vector = commands.add_parser(
        "attribute-vector", parents=[model], help="Mean posterior mode of texts with a property minus without it."
    )
    vector.add_argument("--with", dest="with_file", required=True, metavar="FILE",
                        help="Texts that have the property, one a line (UTF-8).")  # fmt: skip
    vector.add_argument("--without", dest="without_file", required=True, metavar="FILE",
                        help="Texts that do not have it, one a line (UTF-8).")  # fmt: skip
    vector.add_argument("--output", metavar="VEC.safetensors",
                        help="Where the vector goes, with the SHA-256 of the model's weights in its metadata.")  # fmt: skip
    vector.add_argument("--into-model", metavar="NAME",
                        help="Instead of --output: keep the vector in the model folder under NAME "
                             "(attribute_vectors.safetensors, loaded with the model; `shift --vector NAME`).")  # fmt: skip
    vector.add_argument("--overwrite", action="store_true", help="Replace --output if it exists.")
    vector.add_argument("--batch-size", type=int, default=64)
    shift = commands.add_parser("shift", parents=[model, decoding], help="Reconstruct texts moved along a vector.")
    shift.add_argument("texts", nargs="*", metavar="TEXT", help="Default: one text a line on standard input.")
    _texts_may_follow_options(shift)
    shift.add_argument("--vector", required=True, metavar="VEC.safetensors|NAME",
                       help="From `twrvae attribute-vector`, or the name of one of the model's own vectors "
                            "(the Yelp model's `positive`).")  # fmt: skip
    shift.add_argument("--strength", type=float, default=1.0,
                       help="How far along the vector (default 1: all of it; negative: away from the property).")  # fmt: skip
    analogy = commands.add_parser("analogy", parents=[model, decoding], help="a : b :: c : ? in latent space.")
    analogy.add_argument("text_a", metavar="TEXT_A")
    analogy.add_argument("text_b", metavar="TEXT_B")
    analogy.add_argument("text_c", metavar="TEXT_C")
    analogy.add_argument("--strength", type=float, default=1.0, help="z_c + S (z_b - z_a); default 1.")


def _texts_may_follow_options(parser: argparse.ArgumentParser) -> None:
    """Let `parser`'s optional TEXT list come after options too (`shift MODEL --vector V TEXT ...`): argparse matches
    the list, empty, right after MODEL and would refuse the texts after `--vector V` as unrecognised."""
    parse = parser.parse_known_args

    def parse_known_args(args=None, namespace=None):
        namespace, extras = parse(args, namespace)
        texts = [extra for extra in extras if not extra.startswith("-")]
        namespace.texts = [*namespace.texts, *texts]
        return namespace, [extra for extra in extras if extra.startswith("-")]

    parser.parse_known_args = parse_known_args


def read_text_file(path: str, what: str) -> list[str]:
    """The non-blank lines of a UTF-8 file (a byte-order mark ignored), with one-line errors."""
    file = Path(path)
    if not file.is_file():
        raise CommandError(f"{what} {path}: no such file (one text a line).")
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CommandError(f"{what} {path} is not UTF-8 ({error.reason}): convert it, e.g. with iconv.") from error
    texts = [line.strip() for line in text.split("\n") if line.strip()]
    if not texts:
        raise CommandError(f"{what} {path} holds no text: write one text a line.")
    return texts


def model_fingerprint(args) -> str:
    """SHA-256 of the weights of `args.model` (a folder, or a Hub repo's cached snapshot)."""
    from ..file_utils import weights_fingerprint

    folder = Path(args.model)
    if not folder.is_dir():
        from transformers.utils import cached_file

        try:
            folder = Path(cached_file(args.model, "model.safetensors", revision=args.revision)).parent
        except OSError as error:
            raise CommandError(f"{args.model}: could not find its weights to fingerprint ({error}).") from error
    fingerprint = weights_fingerprint(folder)
    if fingerprint is None:
        raise CommandError(f"{args.model} holds no weight file (*.safetensors, *.bin) to fingerprint.")
    return fingerprint


def save_vector(path: str, vector, metadata: dict) -> None:
    from safetensors.torch import save

    values = {"format": VECTOR_FORMAT, **{key: str(value) for key, value in metadata.items()}}
    atomic_write_bytes(Path(path), save({VECTOR_TENSOR: vector.float().contiguous()}, metadata=values))


def load_vector(path: str):
    """The vector and metadata of a file written by `twrvae attribute-vector`, with one-line errors."""
    from safetensors import SafetensorError, safe_open

    if not Path(path).is_file():
        raise CommandError(f"--vector {path}: no such file. Make one with `twrvae attribute-vector`.")
    try:
        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
            names = list(handle.keys())
            if VECTOR_TENSOR not in names:
                raise CommandError(
                    f"--vector {path} holds no {VECTOR_TENSOR!r} tensor (it holds {sorted(names)}): it was not "
                    "written by `twrvae attribute-vector`."
                )
            vector = handle.get_tensor(VECTOR_TENSOR)
    except (SafetensorError, OSError) as error:
        raise CommandError(f"--vector {path} is not a readable safetensors file ({error}).") from error
    if not metadata.get("weights_sha256"):
        raise CommandError(
            f"--vector {path} does not say which weights it was made for (no weights_sha256 in its metadata): make it "
            "with `twrvae attribute-vector`."
        )
    return vector, metadata


def cmd_attribute_vector(args) -> None:
    _check_batch_size(args)
    if (args.output is None) == (args.into_model is None):
        raise CommandError("pass either --output VEC.safetensors or --into-model NAME.")
    if args.output:
        check_output(args)
    elif not Path(args.model).is_dir():
        raise CommandError(f"--into-model writes into the model folder: {args.model} is not a local folder.")
    texts_with = read_text_file(args.with_file, "--with")
    texts_without = read_text_file(args.without_file, "--without")
    vae = load_model(args)
    for texts in (texts_with, texts_without):
        check_texts(texts, vae.tokenizer, allow_unknown=True)
    vector = vae.model.attribute_vector(texts_with, texts_without, vae.tokenizer, batch_size=args.batch_size)
    record = {"output": args.output, "latent_size": int(vector.shape[0]), "norm": float(vector.norm()),
              "num_with": len(texts_with), "num_without": len(texts_without),
              "weights_sha256": model_fingerprint(args)}  # fmt: skip
    if args.into_model:
        add_vector_to_model(args, vae, vector, record)
        return
    save_vector(args.output, vector, {"model": args.model, **{k: v for k, v in record.items() if k != "output"}})
    emit(args, [record], lambda r: (f"wrote {r['output']}: attribute vector of {r['latent_size']} values, norm "
                                    f"{r['norm']:.3f}, from {r['num_with']} texts with and {r['num_without']} without"))  # fmt: skip


def add_vector_to_model(args, vae: Loaded, vector, record: dict) -> None:
    """`--into-model NAME`: the model's vectors file rewritten with NAME added, under the folder's lock, bound to
    the weights by their fingerprint (the weights themselves are not touched)."""
    from ..file_utils import weights_fingerprint
    from ..latent_arithmetic import ATTRIBUTE_VECTORS_FILE, save_attribute_vectors
    from ..storage.locking import locked_folder

    folder = Path(args.model)
    with locked_folder(folder, "twrvae attribute-vector"):
        if weights_fingerprint(folder) != record["weights_sha256"]:
            raise CommandError(f"the weights in {folder} changed while the vector was made: run it again.")
        vae.model.add_attribute_vector(args.into_model, vector)
        temporary = folder / f".{ATTRIBUTE_VECTORS_FILE}.{os.getpid()}.tmp"
        try:
            save_attribute_vectors(vae.model.attribute_vectors, temporary, record["weights_sha256"])
            os.replace(temporary, folder / ATTRIBUTE_VECTORS_FILE)
        finally:
            temporary.unlink(missing_ok=True)
    record = {**record, "output": str(folder / ATTRIBUTE_VECTORS_FILE), "name": args.into_model}
    emit(args, [record], lambda r: (f"added {r['name']!r} to {r['output']}: attribute vector of {r['latent_size']} "
                                    f"values, norm {r['norm']:.3f}, from {r['num_with']} texts with and "
                                    f"{r['num_without']} without"))  # fmt: skip


def _check_strength(strength: float) -> None:
    import math

    if not math.isfinite(strength):
        raise CommandError(f"--strength must be a finite number, got {strength}.")


def cmd_shift(args) -> None:
    _check_strength(args.strength)
    if not (args.vector.endswith(".safetensors") or "/" in args.vector or Path(args.vector).exists()):
        # the name of one of the model's own vectors
        texts = read_texts(args.texts)
        vae = load_model(args)
        if args.vector not in vae.model.attribute_vectors:
            known = ", ".join(sorted(vae.model.attribute_vectors)) or "none"
            raise CommandError(
                f"--vector {args.vector}: the model has no attribute vector of that name (it has: {known}); pass a "
                "file from `twrvae attribute-vector`, or add one with `twrvae attribute-vector MODEL ... --into-model NAME`."
            )
        vector = args.vector
    else:
        vector, metadata = load_vector(args.vector)
        texts = read_texts(args.texts)
        vae = load_model(args)
        check_vector_weights(args, metadata)
    check_texts(texts, vae.tokenizer, vae.max_tokens)
    outputs = vae.model.shift(texts, vector, vae.tokenizer, strength=args.strength, **generate_kwargs(args, vae))
    records = [{"text": text, "strength": args.strength, "shifted": output}
               for text, output in zip(texts, outputs, strict=True)]  # fmt: skip
    emit(args, records, lambda r: r["shifted"])


def check_vector_weights(args, metadata: dict) -> None:
    fingerprint = model_fingerprint(args)
    if metadata["weights_sha256"] != fingerprint:
        raise CommandError(
            f"--vector {args.vector} was made for other weights (SHA-256 {metadata['weights_sha256'][:12]}..., model "
            f"{metadata.get('model', '?')}) than {args.model}'s ({fingerprint[:12]}...): an attribute vector only means "
            f"something in the latent space it was measured in. Make it again with `twrvae attribute-vector {args.model} "
            "--with FILE --without FILE --output VEC.safetensors`."
        )


def cmd_analogy(args) -> None:
    _check_strength(args.strength)
    vae = load_model(args)
    check_texts([args.text_a, args.text_b, args.text_c], vae.tokenizer, vae.max_tokens)
    text = vae.model.analogy(args.text_a, args.text_b, args.text_c, vae.tokenizer, strength=args.strength,
                             **generate_kwargs(args, vae))  # fmt: skip
    record = {"a": args.text_a, "b": args.text_b, "c": args.text_c, "strength": args.strength, "text": text}
    emit(args, [record], lambda r: r["text"])


COMMANDS = {
    "sample": cmd_sample,
    "reconstruct": cmd_reconstruct,
    "interpolate": cmd_interpolate,
    "encode": cmd_encode,
    "score": cmd_score,
    "attribute-vector": cmd_attribute_vector,
    "shift": cmd_shift,
    "analogy": cmd_analogy,
}


if __name__ == "__main__":
    sys.exit(main())
