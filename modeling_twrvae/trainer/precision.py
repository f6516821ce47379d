"""The precision train.py trains in: what `--mixed_precision` asks for where the machine has it, else fp32 with a
warning, and what the Accelerator really uses (what `training_config.yaml` records)."""

from __future__ import annotations

import warnings

import torch


def cpu_supports_bf16() -> bool:
    """Whether oneDNN has bf16 kernels for this CPU (AVX512-BF16 or AMX); without them its LSTM has no bf16 primitive
    at all, and bf16 matrix multiplies are emulated, many times slower than fp32."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def usable_mixed_precision(args) -> str | None:
    on_cpu = args.use_cpu or not torch.cuda.is_available()
    if args.mixed_precision == "bf16" and on_cpu and not cpu_supports_bf16():
        warnings.warn(
            "--mixed_precision bf16 was asked for, but this CPU has no bf16 support (AVX512-BF16 or AMX): oneDNN has "
            "no bf16 LSTM for it and emulated bf16 is slower than fp32. Training in fp32 instead.",
            stacklevel=2,
        )
        return "no"
    if args.mixed_precision == "fp16" and on_cpu:
        warnings.warn(
            "--mixed_precision fp16 was asked for, but accelerate has no fp16 autocast on a CPU (it would train in "
            "fp32 and call it fp16). Training in fp32 instead, and training_config.yaml says so; bf16 is the CPU's "
            "mixed precision.",
            stacklevel=2,
        )
        return "no"
    return args.mixed_precision


def trained_precision(accelerator) -> str:
    """The precision the Accelerator really trains in (what `training_config.yaml` records)."""
    if accelerator.device.type == "cpu" and not accelerator.native_amp:
        return "no"  # accelerate keeps the name of a precision it cannot autocast to on a CPU
    return accelerator.mixed_precision


__all__ = ["cpu_supports_bf16", "trained_precision", "usable_mixed_precision"]
