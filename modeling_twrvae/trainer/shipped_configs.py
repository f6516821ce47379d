"""The training configs shipped with the package (`trainer/configs/`): `--config demo` or `--config ptb/twr-vae`
names one of them, so that an installed wheel trains as a clone does; a path to a YAML file of your own works too."""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def shipped_config_names() -> list[str]:
    """`demo`, `ptb/twr-vae`, `dialogue/dailydialog-twr-cvae`, ...: the names `--config` accepts."""
    return sorted(path.relative_to(CONFIG_DIR).with_suffix("").as_posix() for path in CONFIG_DIR.rglob("*.yaml"))


def resolve_config(value: str) -> Path:
    """The YAML file `--config VALUE` means: an existing file, else the shipped config of that name (with or without
    `.yaml`)."""
    path = Path(value)
    if path.is_file():
        return path
    name = value.removesuffix(".yaml")
    shipped = CONFIG_DIR / f"{name}.yaml"
    if shipped.is_file():
        return shipped
    raise FileNotFoundError(
        f"--config {value}: no such file, and no shipped config of that name. Shipped configs: "
        f"{', '.join(shipped_config_names())}."
    )
