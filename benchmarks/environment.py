"""What a benchmark ran on, recorded beside its numbers."""

from __future__ import annotations

import platform

import torch


def describe(device: str) -> dict:
    return {
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or "cpu",
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
