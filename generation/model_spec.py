"""What model to load, as the server's settings name it (plain values: reading the settings
loads no torch)."""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelSpec:
    """What to load: `source` is a bundled model's short name, a folder or a hub id; None
    means the bundled default."""

    source: str | None = None
    allow_download: bool = False
    cache_dir: Path | None = None
    prompt_format: str = "auto"
    device: str = "auto"
    dtype: str = "auto"
