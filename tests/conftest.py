import os
from pathlib import Path

import pytest

# Tests never touch the network: everything they load is embedded or built in-process.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from core.corpora import default_data_dir  # noqa: E402

DATA = default_data_dir()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "epitome-reddit").is_dir():
        pytest.skip(f"shared data not found at {DATA} (set PARTNER_DATA to the folder with epitome-reddit/)")
    return DATA
