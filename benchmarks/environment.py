"""What a benchmark ran on, recorded beside its numbers; and what every benchmark script shares."""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

RESULTS_DIR_ENV = "TWRVAE_BENCHMARK_RESULTS"
DEFAULT_RESULTS_DIR = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def cpu_label() -> str:
    """The CPU's name with the vector unit torch's kernels use on it ("AMD EPYC with AVX2"): machines that report one
    name can differ in it, and so in speed."""
    return f"{cpu_model()} with {torch.backends.cpu.get_cpu_capability()}"


_VECTOR_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")


def _cpu_flags() -> list[str]:
    """The vector-unit flags of /proc/cpuinfo that decide which kernels oneDNN runs (bf16 needs avx512_bf16 or AMX)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in _VECTOR_FLAGS if flag in present]
    except OSError:
        pass
    return []


def _git_commit() -> str | None:
    """The commit the benchmark ran from, with "+changes" when the work tree differed from it; None outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+changes" if changed else "")


def load_module_file(module_name: str, path: Path):
    """The Python file `path` as the module `module_name`, kept in sys.modules under that name (loaded once; a file
    whose import fails leaves nothing behind). Nothing changes sys.path: this is how the benchmarks load the papers'
    and the baselines' code from `.reference/`."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def describe(device: str) -> dict:
    info = {
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else cpu_model(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_flags": _cpu_flags(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "git_commit": _git_commit(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }
    if device.startswith("cuda"):
        info["cuda"] = torch.version.cuda
    return info


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="Fewer settings and repeats (minutes, not hours).")
    parser.add_argument(
        "--results_dir",
        default=os.environ.get(RESULTS_DIR_ENV, str(DEFAULT_RESULTS_DIR)),
        help=f"Where the JSON (and PNG) results go (default: ${RESULTS_DIR_ENV} or benchmarks/results).",
    )


def check_device(device: str) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible here; use --device cpu.")


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def median_seconds(function, device: str, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        function()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(functions: dict, device: str, repeats: int, warmup: int = 1, settle: int = 0) -> dict:
    """Median seconds of each function, timed round-robin so that a change in machine load hits all alike.

    `settle`: calls of a function left untimed in each round just before its timed call, so that the timed one runs
    as in a loop of its own (a training step follows a training step, with its caches and freed buffers warm), not
    just after another row's work."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            for _ in range(settle):
                function()
            synchronize(device)
            start = time.perf_counter()
            function()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def matmul_gflops(shapes, device: str, dtype: torch.dtype, repeats: int) -> dict:
    """GFLOP/s of `torch.matmul` for each (m, k, n); the best of them is the peak a model's step is held against."""
    result = {}
    for m, k, n in shapes:
        a = torch.randn(m, k, device=device, dtype=dtype)
        b = torch.randn(k, n, device=device, dtype=dtype)
        seconds = median_seconds(lambda a=a, b=b: torch.matmul(a, b), device, repeats, warmup=2)
        result[f"{m}x{k}x{n}"] = 2 * m * k * n / seconds / 1e9
    return result


def results_path(results_dir: str, name: str, device: str, suffix: str = "json") -> Path:
    path = Path(results_dir) / f"{name}-{device}.{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
