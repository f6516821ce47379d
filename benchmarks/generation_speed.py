"""Generation throughput from latents: greedy, top-p sampling and 5-beam search at batch 1 and 64; per-step overhead.

    python benchmarks/generation_speed.py [--device cpu|cuda] [--quick]

TWR-VAE at the papers' sizes (vocabulary 10k, embedding 512, hidden 256, latent 32; random weights: speed does not
depend on them). Every sentence is decoded to exactly --new_tokens tokens (`min_new_tokens` holds `<eos>` back), so
all rows do the same number of steps. Sentences per second counts the latents decoded (a 5-beam sentence costs 5
beams).

The step breakdown decodes one token for the whole batch three ways: `generate` (its time per token), the model's
forward with the cache (`model(input_ids=last, latents=z, cache=...)`, what `generate` calls each step), and a raw
`nn.LSTM` step plus the output layer and an argmax: what any decoder must do. The gap between them is per-step
overhead. Prints tables, writes benchmarks/results/generation_speed-DEVICE.json.
"""

from __future__ import annotations

import argparse

import torch
from environment import add_common_arguments, check_device, describe, median_seconds, results_path

from modeling_twrvae import TWRVAEConfig, TWRVAEModel
from modeling_twrvae.file_utils import atomic_write_json
from modeling_twrvae.generation_twrvae import TWRVAEDecoderCache

MODES = {
    "greedy": {"do_sample": False},
    "top-p 0.9": {"do_sample": True, "top_p": 0.9, "top_k": 0},
    "beam 5": {"num_beams": 5, "do_sample": False},
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--new_tokens", type=int, default=20, help="Tokens generated per sentence.")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--repeats", type=int, help="Timed runs per row (default 5, 2 with --quick).")
    args = parser.parse_args(argv)
    check_device(args.device)
    repeats = args.repeats or (2 if args.quick else 5)
    torch.manual_seed(0)
    model = TWRVAEModel(TWRVAEConfig.from_preset("twr-vae", vocab_size=10000)).to(args.device).eval()
    tokens = args.new_tokens

    rows = []
    for batch in args.batch_sizes:
        latents = model.sample_prior(batch, generator=torch.Generator(args.device).manual_seed(0))
        for mode, options in MODES.items():

            def run(options=options, latents=latents, batch=batch):
                with torch.no_grad():
                    out = model.generate(latents=latents, max_new_tokens=tokens, min_new_tokens=tokens, **options)
                assert out.shape == (batch, tokens + 1), out.shape

            seconds = median_seconds(run, args.device, repeats)
            rows.append(
                {
                    "mode": mode,
                    "batch_size": batch,
                    "new_tokens": tokens,
                    "seconds": seconds,
                    "sentences_per_second": batch / seconds,
                    "ms_per_step": 1000 * seconds / tokens,
                }
            )

    steps = []
    config = model.config
    rnn, head, embed = model.decoder.rnn, model.decoder.lm_head, model.decoder.embed_tokens
    for batch in args.batch_sizes:
        latents = model.sample_prior(batch, generator=torch.Generator(args.device).manual_seed(0))
        last = torch.full((batch, 1), config.bos_token_id, device=args.device)
        with torch.no_grad():
            state = model.decoder.initial_state(latents)
            cache = TWRVAEDecoderCache(state, 1)

        @torch.no_grad()
        def forward_step(last=last, latents=latents, cache=cache):
            model(input_ids=last, latents=latents, cache=cache).logits[:, -1].argmax(-1)

        @torch.no_grad()
        def raw_step(last=last, latents=latents, state=state):
            inputs = torch.cat([embed(last), latents[:, None]], dim=-1)
            output, _ = rnn(inputs, state)
            head(output[:, -1]).argmax(-1)

        generate_ms = next(r["ms_per_step"] for r in rows if r["mode"] == "greedy" and r["batch_size"] == batch)
        forward_ms = 1000 * median_seconds(forward_step, args.device, repeats * 20, warmup=3)
        raw_ms = 1000 * median_seconds(raw_step, args.device, repeats * 20, warmup=3)
        steps.append(
            {
                "batch_size": batch,
                "generate_greedy_ms_per_step": generate_ms,
                "model_forward_with_cache_ms": forward_ms,
                "raw_lstm_step_ms": raw_ms,
                "generate_over_raw": generate_ms / raw_ms,
                "forward_over_raw": forward_ms / raw_ms,
            }
        )

    print(
        f"\nGeneration, TWR-VAE paper sizes, {tokens} new tokens per sentence, {args.device} "
        f"({describe(args.device)['device']}), {torch.get_num_threads()} threads, median of {repeats} runs"
    )
    print(f"{'mode':<10} {'batch':>5} {'seconds':>9} {'sentences/s':>12} {'ms/step':>9}")
    for row in rows:
        print(
            f"{row['mode']:<10} {row['batch_size']:>5} {row['seconds']:>9.3f} {row['sentences_per_second']:>12.1f} "
            f"{row['ms_per_step']:>9.2f}"
        )
    print("\nOne greedy step (ms): generate / model forward with cache / raw nn.LSTM step + output layer")
    print(f"{'batch':>5} {'generate':>9} {'forward':>9} {'raw':>9} {'gen/raw':>8} {'fwd/raw':>8}")
    for row in steps:
        print(
            f"{row['batch_size']:>5} {row['generate_greedy_ms_per_step']:>9.3f} "
            f"{row['model_forward_with_cache_ms']:>9.3f} {row['raw_lstm_step_ms']:>9.3f} "
            f"{row['generate_over_raw']:>8.2f} {row['forward_over_raw']:>8.2f}"
        )
    result = {
        "benchmark": "generation_speed",
        **describe(args.device),
        "repeats": repeats,
        "quick": args.quick,
        "rows": rows,
        "step_breakdown": steps,
    }
    output = atomic_write_json(results_path(args.results_dir, "generation_speed", args.device), result)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
