"""Training-step throughput against the machine's matrix-multiply peak, the papers' reference code, and bf16.

    python benchmarks/training_throughput.py [--device cpu|cuda] [--quick] [--reference_dir .reference/lang_model]

`--profile VARIANT` profiles one row's step instead (torch.profiler): where its time goes, operator by operator.

One training step (forward, backward, Adam update) at the papers' sizes: vocabulary 10k, embedding 512, hidden 256,
24-token sentences; TWR-VAE (latent 32, batch 64) and HR-VAE (2 layers, posterior from [h; c], latent 512,
batch 128). Rows, timed round-robin in one process (median of the repeats), so that machine load hits all alike; in each round
a row's timed step follows an untimed step of its own, as in training:

- `package`: what `training/train.py` runs: `model(..., return_logits=False)` (on CPU the fused output-layer loss
  and dropout masks from `uniform_`), fused Adam, and on CPU `reuse_freed_memory()` (glibc keeps freed large blocks
  instead of page-faulting them back each step).
- `package, full logits + per-tensor Adam`: the same model returning every position's logits, the for-loop Adam and
  glibc's default allocation (about what this package did before the loss path and the optimiser were made fast).
- `package bf16`: `package` under `torch.autocast(bfloat16)`, what `--mixed_precision bf16` does. Skipped on a CPU
  without oneDNN bf16 kernels (AVX-512 or AMX), where bf16 is emulated and its LSTM kernel is missing. On CPUs also
  `package bf16, autocast's plain output layer`: the same with `lm_head` + fp32 cross-entropy as autocast runs them
  (what bf16 ran before the fused loss took autocast's precisions).
- `encoder states: scan` / `unrolled` (HR-VAE): the per-timestep LSTM cell states from the fused `nn.LSTM` plus a
  log-depth scan, or from the unrolled loop (see `modeling_twrvae/recurrence.py`); the package picks unrolled on
  CPUs and scan elsewhere.
- `reference`: `lang_model/encoder.py` and `decoder.py` of the TWR-VAE authors (github.com/ruizheliUOA/TWR-VAE), imported
  from `--reference_dir` (not part of this repository: fetch them there); skipped with a message if absent. Timed
  as its authors run it (glibc defaults), and as `reference, freed memory reused` with the package's allocator
  setting, which isolates the difference the code makes.

FLOPs of a step = 3 x 2 x the forward multiply-adds the package performs (encoder and decoder RNNs at every position,
the output layer at the predicted ones); the peak is the best `torch.matmul` GFLOP/s among the model's own shapes
(batch*length x hidden x vocab, batch*length x embedding x 4*hidden, batch x hidden x 4*hidden), timed in the same
rounds. Prints a table, writes benchmarks/results/training_throughput-DEVICE.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
from pathlib import Path

import torch
from environment import (
    add_common_arguments,
    check_device,
    describe,
    interleaved_medians,
    load_module_file,
    results_path,
    synchronize,
)

import modeling_twrvae.modeling_twrvae as modeling
from modeling_twrvae import TWRVAEConfig, TWRVAEModel
from modeling_twrvae.file_utils import atomic_write_json
from modeling_twrvae.recurrence import lstm_states_unrolled
from modeling_twrvae.trainer.memory import reuse_freed_memory
from modeling_twrvae.trainer.precision import cpu_supports_bf16

REPO_ROOT = Path(__file__).resolve().parents[1]

VOCAB = 10000
LENGTH = 24
PRESETS = {"twr-vae": 64, "hr-vae": 128}  # preset -> the papers' batch size
DEFAULT_REFERENCE_DIR = REPO_ROOT / ".reference" / "lang_model"


def forward_macs(config: TWRVAEConfig, batch: int, length: int) -> int:
    """Multiply-adds of the package's forward pass on `batch` full-length sentences of `length` tokens."""
    e, h, z, v, layers = (
        config.embedding_size,
        config.hidden_size,
        config.latent_size,
        config.vocab_size,
        config.num_layers,
    )
    positions, predicted = batch * length, batch * (length - 1)
    encoder = sum(positions * 4 * h * ((e if i == 0 else h) + h) for i in range(layers))
    posterior = positions * config.posterior_input_size * 2 * z
    init = batch * z * layers * h if config.decoder_init == "linear" else 0
    decoder = sum(positions * 4 * h * ((e + z if i == 0 else h) + h) for i in range(layers))
    return encoder + posterior + init + decoder + predicted * h * v


def make_batch(batch: int, length: int, device: str, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, VOCAB, (batch, length), generator=generator)
    ids[:, 0], ids[:, -1] = 2, 3
    return ids.to(device)


def autocast(device: str, enabled: bool):
    return torch.autocast(device_type=device, dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


@contextlib.contextmanager
def encoder_states(method: str):
    """Force the HR-VAE encoder's way of getting every timestep's cell state (the package picks by device)."""
    original = modeling.lstm_hidden_and_cell_states

    def scan(lstm, inputs):
        from modeling_twrvae.recurrence import lstm_cell_states

        hidden, _ = lstm(inputs)
        return hidden, lstm_cell_states(lstm, inputs, hidden)

    modeling.lstm_hidden_and_cell_states = {"unrolled": lstm_states_unrolled, "scan": scan}[method]
    try:
        yield
    finally:
        modeling.lstm_hidden_and_cell_states = original


@contextlib.contextmanager
def plain_output_layer(enabled: bool = True):
    """The output layer as `lm_head` + cross-entropy (what ran before the fused CPU losses, and what autocast's own
    path is), instead of `output_layer_nll`'s fused loss."""
    import modeling_twrvae.output_layer_nll as nll

    fusable = nll._fusable
    if enabled:
        nll._fusable = lambda *args: False
    try:
        yield
    finally:
        nll._fusable = fusable


def package_step(preset: str, batch: int, device: str, full_logits=False, bf16=False, states=None, plain=False):
    torch.manual_seed(0)
    model = TWRVAEModel(TWRVAEConfig.from_preset(preset, vocab_size=VOCAB)).to(device).train()
    adam = {"foreach": False} if full_logits else {"fused": True}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, eps=1e-6, weight_decay=1e-5, **adam)
    ids = make_batch(batch, LENGTH, device)
    mask = torch.ones_like(ids)

    def step():
        states_context = encoder_states(states) if states else contextlib.nullcontext()
        with states_context, autocast(device, bf16), plain_output_layer(plain):
            output = model(input_ids=ids, attention_mask=mask, return_logits=full_logits)
        output.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, model.config


def user_loop_step(preset: str, batch: int, device: str, plain_logits: bool = False):
    """A user's own loop with the model's defaults, as transformers users write it: `model(**batch).loss` (logits
    returned), `torch.optim.Adam(model.parameters())` with its default arguments. `plain_logits`: the output layer
    as it ran by default before (separate `lm_head` and cross-entropy of the selected logits)."""
    torch.manual_seed(0)
    model = TWRVAEModel(TWRVAEConfig.from_preset(preset, vocab_size=VOCAB)).to(device).train()
    optimizer = torch.optim.Adam(model.parameters())
    inputs = {"input_ids": make_batch(batch, LENGTH, device)}
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])

    def step():
        with plain_output_layer(plain_logits):
            loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    return step


def load_reference_module(reference_dir: Path, name: str):
    """`reference_dir/NAME.py` as a module, loaded from its file (no change to sys.path; the reference's encoder.py and
    decoder.py import only torch, numpy and the standard library). Kept in sys.modules under a name of its own, so
    that it neither shadows nor is shadowed by another module called `encoder` or `decoder`."""
    return load_module_file(f"twrvae_reference_{name}", Path(reference_dir) / f"{name}.py")


def reference_step(reference_dir: Path, batch: int, device: str):
    encoder_module, decoder_module = (load_reference_module(reference_dir, name) for name in ("encoder", "decoder"))
    config = TWRVAEConfig.from_preset("twr-vae", vocab_size=VOCAB)
    e, h, z = config.embedding_size, config.hidden_size, config.latent_size
    torch.manual_seed(0)
    encoder = encoder_module.Encoder(VOCAB, e, h, z, 1, config.dropout, z_mode="normal").to(device).train()
    decoder = decoder_module.Decoder(VOCAB, e, h, z, 1, config.dropout, z_mode="normal").to(device).train()
    # the reference's own optimiser line (lang_model/main.py)
    optimizer = torch.optim.Adam(
        list(encoder.parameters()) + list(decoder.parameters()), lr=1e-4, eps=1e-6, weight_decay=1e-5
    )
    sentences = make_batch(batch, LENGTH, device).T.contiguous()  # the reference is sequence-first

    def step():
        optimizer.zero_grad()
        latent, mean, logvar, lengths, _ = encoder(sentences)
        predictions = decoder(latent, sentences)
        loss = encoder.loss(mean, logvar) + decoder.loss(predictions, sentences, lengths)
        loss.backward()
        optimizer.step()

    return step


def variants(preset: str, device: str, bf16_ok: bool, reference_dir: Path | None):
    """name -> (builder, precision, whether freed memory is kept for reuse)"""
    batch = PRESETS[preset]
    rows = {
        "package": (lambda: package_step(preset, batch, device)[0], "fp32", True),
        "package, full logits + per-tensor Adam": (
            lambda: package_step(preset, batch, device, full_logits=True)[0],
            "fp32",
            False,
        ),
    }
    if preset == "twr-vae":
        rows["user loop (model defaults, default Adam)"] = (
            lambda: user_loop_step(preset, batch, device),
            "fp32",
            False,
        )
        rows["user loop, earlier default output layer"] = (
            lambda: user_loop_step(preset, batch, device, plain_logits=True),
            "fp32",
            False,
        )
        if device == "cpu":
            rows["user loop, freed memory reused"] = (lambda: user_loop_step(preset, batch, device), "fp32", True)
    if preset == "hr-vae":
        other = "scan" if device == "cpu" else "unrolled"
        rows[f"package, encoder states: {other}"] = (
            lambda: package_step(preset, batch, device, states=other)[0],
            "fp32",
            True,
        )
    if bf16_ok:
        rows["package bf16"] = (lambda: package_step(preset, batch, device, bf16=True)[0], "bf16", True)
        if device == "cpu" and preset == "twr-vae":
            rows["package bf16, autocast's plain output layer"] = (
                lambda: package_step(preset, batch, device, bf16=True, plain=True)[0],
                "bf16",
                True,
            )
    if preset == "twr-vae" and reference_dir is not None:
        rows["reference"] = (lambda: reference_step(reference_dir, batch, device), "fp32", False)
        if device == "cpu":
            rows["reference, freed memory reused"] = (
                lambda: reference_step(reference_dir, batch, device),
                "fp32",
                True,
            )
    return rows


def with_allocation(function, reuse: bool, device: str):
    if device != "cpu":
        return function

    def run():
        reuse_freed_memory(reuse)
        function()

    return run


def peak_memory_mib(preset: str, variant: str, device: str, reference_dir) -> float:
    """Peak memory of two steps: CUDA's allocator peak, or on CPU the resident-set growth in a fresh process."""
    if device == "cuda":
        build, _, _ = variants(preset, device, True, reference_dir)[variant]
        step = build()
        synchronize(device)
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        step()
        synchronize(device)
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    command = [sys.executable, __file__, "--device", device, "--_memory_of", json.dumps([preset, variant])]
    if reference_dir is not None:
        command += ["--reference_dir", str(reference_dir)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return float(output.strip().splitlines()[-1])


def _memory_child(preset: str, variant: str, device: str, reference_dir) -> None:
    build, _, reuse = variants(preset, device, True, reference_dir)[variant]
    reuse_freed_memory(reuse)
    step = build()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()
    step()
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)  # KiB on Linux


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--reference_dir", default=str(DEFAULT_REFERENCE_DIR), help="Holds encoder.py, decoder.py.")
    parser.add_argument("--repeats", type=int, help="Timed rounds (default 15, 5 with --quick).")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--no_memory", action="store_true", help="Skip the peak-memory column.")
    parser.add_argument(
        "--profile",
        metavar="VARIANT",
        help="Instead of timing every row, profile this row's step (torch.profiler, 5 steps after 3) and print where "
        "its time goes, operator by operator; writes training_throughput-profile-DEVICE.json.",
    )
    parser.add_argument("--_memory_of", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    check_device(args.device)
    reference_dir = Path(args.reference_dir)
    if not (reference_dir / "encoder.py").is_file() or not (reference_dir / "decoder.py").is_file():
        print(
            f"reference row skipped: no encoder.py/decoder.py in {reference_dir}. Extract lang_model/encoder.py and "
            "decoder.py of github.com/ruizheliUOA/TWR-VAE there (see benchmarks/README.md)."
        )
        reference_dir = None
    if args._memory_of:
        _memory_child(*json.loads(args._memory_of), args.device, reference_dir)
        return
    repeats = args.repeats or (5 if args.quick else 15)
    bf16_ok = args.device == "cuda" or cpu_supports_bf16()
    if args.profile:
        profile_variant(args.presets[0], args.profile, args.device, bf16_ok, reference_dir, args.results_dir)
        return
    if not bf16_ok:
        print(
            "bf16 rows skipped: this CPU has no oneDNN bf16 kernels (needs AVX-512 or AMX): bf16 matrix products are "
            "emulated (far slower than fp32) and oneDNN's LSTM refuses bf16."
        )

    results = []
    peaks = {}
    for preset in args.presets:
        batch = PRESETS[preset]
        config = TWRVAEConfig.from_preset(preset, vocab_size=VOCAB)
        h, e = config.hidden_size, config.embedding_size
        shapes = [(batch * LENGTH, h, VOCAB), (batch * LENGTH, e, 4 * h), (batch, h, 4 * h)]
        rows = variants(preset, args.device, bf16_ok, reference_dir)
        functions = {name: with_allocation(build(), reuse, args.device) for name, (build, _, reuse) in rows.items()}
        for dtype in (torch.float32, torch.bfloat16) if bf16_ok else (torch.float32,):
            for m, k, n in shapes:
                a = torch.randn(m, k, device=args.device, dtype=dtype)
                b = torch.randn(k, n, device=args.device, dtype=dtype)
                functions[f"matmul {str(dtype)[6:]} {m}x{k}x{n}"] = lambda a=a, b=b: torch.matmul(a, b)
        seconds = interleaved_medians(functions, args.device, repeats, warmup=2, settle=1)
        matmul = {name: 2 * int(name.split()[-1].split("x")[0]) * int(name.split()[-1].split("x")[1])
                  * int(name.split()[-1].split("x")[2]) / value / 1e9
                  for name, value in seconds.items() if name.startswith("matmul")}  # fmt: skip
        peak = max(value for name, value in matmul.items() if "float32" in name)
        peak_bf16 = max((value for name, value in matmul.items() if "bfloat16" in name), default=None)
        peaks[preset] = {"fp32_gflops": peak, "bf16_gflops": peak_bf16, "matmul_gflops": matmul}
        flops = 3 * 2 * forward_macs(config, batch, LENGTH)
        tokens = batch * (LENGTH - 1)
        reference_seconds = seconds.get("reference")
        for name, (_, precision, _) in rows.items():
            step = seconds[name]
            row = {
                "preset": preset,
                "variant": name,
                "precision": precision,
                "batch_size": batch,
                "length": LENGTH,
                "step_ms": step * 1000,
                "tokens_per_second": tokens / step,
                "gflops": flops / step / 1e9,
                "fraction_of_fp32_peak": flops / step / 1e9 / peak,
                "speedup_vs_reference": reference_seconds / step if reference_seconds else None,
                "speedup_vs_package_fp32": seconds["package"] / step,
            }
            if not args.no_memory and not (args.quick and args.device == "cpu"):
                row["peak_memory_mib"] = peak_memory_mib(preset, name, args.device, reference_dir)
            results.append(row)

    print(
        f"\nTraining step, vocabulary {VOCAB}, {LENGTH}-token sentences, {args.device} "
        f"({describe(args.device)['device']}), {torch.get_num_threads()} threads, median of {repeats} rounds"
    )
    for preset, peak in peaks.items():
        bf16 = f", bf16 {peak['bf16_gflops']:.0f}" if peak["bf16_gflops"] else ""
        print(f"  {preset}: matmul peak among its shapes: fp32 {peak['fp32_gflops']:.0f} GFLOP/s{bf16}")
    header = (
        f"{'preset':<8} {'variant':<45} {'prec':<5} {'batch':>5} {'step ms':>9} {'tokens/s':>9} {'GFLOP/s':>8} "
        f"{'% peak':>7} {'x ref':>6} {'x fp32':>7} {'mem MiB':>8}"
    )
    print(header)
    for row in results:
        reference = f"{row['speedup_vs_reference']:.2f}" if row["speedup_vs_reference"] else "-"
        memory = f"{row['peak_memory_mib']:.0f}" if "peak_memory_mib" in row else "-"
        print(
            f"{row['preset']:<8} {row['variant']:<45} {row['precision']:<5} {row['batch_size']:>5} "
            f"{row['step_ms']:>9.1f} {row['tokens_per_second']:>9.0f} {row['gflops']:>8.1f} "
            f"{100 * row['fraction_of_fp32_peak']:>6.0f}% {reference:>6} {row['speedup_vs_package_fp32']:>7.2f} "
            f"{memory:>8}"
        )
    targets = targets_summary(results)
    for line in targets:
        print(line)
    result = {
        "benchmark": "training_throughput",
        **describe(args.device),
        "repeats": repeats,
        "quick": args.quick,
        "peaks": peaks,
        "rows": results,
        "targets": targets,
    }
    output = atomic_write_json(results_path(args.results_dir, "training_throughput", args.device), result)
    print(f"wrote {output}")


def speedup(row: dict, baseline: dict) -> float:
    """How many times faster `row`'s step is than `baseline`'s."""
    return baseline["step_ms"] / row["step_ms"]


def profile_variant(preset, variant, device, bf16_ok, reference_dir, results_dir, steps=5) -> None:
    """Self time per step of each operator of one row's step, largest first (and what share of the step it is)."""
    from torch.profiler import ProfilerActivity, profile

    rows = variants(preset, device, bf16_ok, reference_dir)
    if variant not in rows:
        raise SystemExit(f"--profile: no row {variant!r} for {preset}; the rows are: {', '.join(rows)}")
    build, _, reuse = rows[variant]
    step = with_allocation(build(), reuse, device)
    for _ in range(3):
        step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as profiler:
        for _ in range(steps):
            step()
        synchronize(device)
    events = [event for event in profiler.key_averages() if event.self_cpu_time_total > 0]
    total = sum(event.self_cpu_time_total for event in events) / steps / 1000
    operators = sorted(
        ({"operator": e.key, "ms_per_step": e.self_cpu_time_total / steps / 1000, "calls_per_step": e.count / steps}
         for e in events), key=lambda row: -row["ms_per_step"])  # fmt: skip
    print(f"\n{preset}, {variant!r}, {device}, {torch.get_num_threads()} threads: {total:.1f} ms of self time a step")
    print(f"{'operator':<48} {'ms/step':>8} {'share':>6} {'calls':>6}")
    for row in operators[:20]:
        share = row["ms_per_step"] / total
        print(f"{row['operator'][:48]:<48} {row['ms_per_step']:>8.2f} {share:>6.1%} {row['calls_per_step']:>6.0f}")
    result = {"benchmark": "training_throughput-profile", **describe(device), "preset": preset, "variant": variant}
    result.update(steps=steps, self_ms_per_step=total, operators=operators)
    output = atomic_write_json(results_path(results_dir, "training_throughput-profile", device), result)
    print(f"wrote {output}")


def targets_summary(rows) -> list[str]:
    def find(preset, variant):
        return next((row for row in rows if row["preset"] == preset and row["variant"] == variant), None)

    lines = []
    for preset, goal in (("twr-vae", 0.75), ("hr-vae", 0.70)):
        row = find(preset, "package")
        if row:
            value = row["fraction_of_fp32_peak"]
            lines.append(
                f"target {preset} fp32 >= {goal:.0%} of peak: {value:.0%} ({'met' if value >= goal else 'NOT met'})"
            )
        bf16 = find(preset, "package bf16")
        if bf16:
            value = bf16["speedup_vs_package_fp32"]
            plain = find(preset, "package bf16, autocast's plain output layer")
            extra = f"; with autocast's plain output layer {speedup(plain, row):.2f}x" if plain and row else ""
            lines.append(
                f"target {preset} bf16 >= 1.5x fp32: {value:.2f}x ({'met' if value >= 1.5 else 'NOT met'}){extra}"
            )
    row = find("twr-vae", "package")
    same = find("twr-vae", "reference, freed memory reused")
    if row and row["speedup_vs_reference"]:
        value = row["speedup_vs_reference"]
        if same:
            fair = same["step_ms"] / row["step_ms"]
            lines.append(
                f"target twr-vae (train.py) >= 1.3x reference, same allocator setting: {fair:.2f}x "
                f"({'met' if fair >= 1.3 else 'NOT met'}); against the reference as its authors run it {value:.2f}x"
            )
        else:
            lines.append(f"target twr-vae >= 1.3x reference: {value:.2f}x ({'met' if value >= 1.3 else 'NOT met'})")
    user = find("twr-vae", "user loop (model defaults, default Adam)")
    if user and user["speedup_vs_reference"]:
        value = user["speedup_vs_reference"]
        reused = find("twr-vae", "user loop, freed memory reused")
        extra = f"; both with freed memory reused {same['step_ms'] / reused['step_ms']:.2f}x" if reused and same else ""
        lines.append(
            f"target user loop >= 1.0x reference (both glibc defaults): {value:.2f}x "
            f"({'met' if value >= 1.0 else 'NOT met'}){extra}"
        )
    return lines


if __name__ == "__main__":
    main()
