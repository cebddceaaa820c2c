"""Fetch the default model set into the real store (idempotent: later runs only verify)."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import pytest

from framecast.models import CATALOGUE, DEFAULT_SET, ModelStore
from framecast.models.cli import run_models_command

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store() -> ModelStore:
    """The user's store (``$FRAMECAST_MODELS_DIR`` or ``~/.cache``), filled with the default set."""
    store = ModelStore()
    lines: list[str] = []
    store.fetch(progress=lines.append)
    assert lines[-1].endswith(f"0 failed (source: registry, store: {store.root})")
    return store


def test_default_set_is_installed_and_listed(store: ModelStore) -> None:
    out = io.StringIO()
    args = argparse.Namespace(models_command="list")
    assert run_models_command(args, store, out, io.StringIO()) == 0

    rows = {line.split()[0]: line.split() for line in out.getvalue().splitlines()[1:-1]}
    for name in DEFAULT_SET:
        assert rows[name][1:4] == [CATALOGUE[name].kind, "yes", "yes"], rows[name]
        assert rows[name][-1] == str(store.path(name))


def test_a_second_fetch_only_verifies(store: ModelStore) -> None:
    results = store.fetch()
    assert [result.outcome for result in results] == ["present"] * len(DEFAULT_SET)


def test_assembled_files_are_what_the_engines_load(store: ModelStore) -> None:
    whisper: Path = store.path("whisper-tiny.en")
    assert sorted(p.name for p in whisper.iterdir() if p.suffix != ".sha256") == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.txt",
    ]
    assert store.path("qwen2.5-coder-0.5b").read_bytes()[:4] == b"GGUF"
    with np.load(store.path("kokoro-voices")) as voices:
        assert len(voices.files) == 54
        assert voices["af_heart"].shape == (510, 1, 256)
        assert voices["af_heart"].dtype == np.float32
