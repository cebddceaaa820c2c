"""Fetch models from their upstream homes (Hugging Face, one GitHub release file).

For users with internet access. The downloader is injected: the default uses
``huggingface_hub.hf_hub_download`` (installed with faster-whisper) and ``urllib`` for
plain URLs; tests pass a fake that records the requests. The artefact must hash to the
same pinned sha256 as the registry one, so a changed upstream file fails loudly.
"""

from __future__ import annotations

import hashlib
import importlib
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np

from framecast.exceptions import ModelFetchError
from framecast.models._catalogue import HubFile, HubRecipe, HubVoices, ModelSpec
from framecast.models._files import append_stream, voice_from_bin, write_voices_npz

__all__ = ["HubDownload", "HubFetcher", "hub_download"]

HubDownload = Callable[[HubFile, Path], Path]
"""(file to fetch, scratch directory) -> local path of the downloaded file."""


def hub_download(item: HubFile, scratch: Path) -> Path:
    """Download one file: a plain URL with urllib, otherwise from the Hugging Face Hub.

    Raises:
        ModelFetchError: ``huggingface_hub`` is missing or the download failed.
    """
    try:
        if item.url:
            local = scratch / Path(item.filename).name
            with urllib.request.urlopen(item.url) as response, local.open("wb") as out:
                append_stream(response, out, hashlib.sha256())
            return local
        try:
            hub = importlib.import_module("huggingface_hub")
        except ImportError:
            raise ModelFetchError(
                "the hub source needs huggingface_hub: pip install huggingface_hub"
            ) from None
        return Path(hub.hf_hub_download(repo_id=item.repo_id, filename=item.filename))
    except ModelFetchError:
        raise
    except Exception as exc:  # network and hub errors come in many types
        where = item.url or f"{item.repo_id}/{item.filename}"
        raise ModelFetchError(f"download of {where} failed: {exc}") from exc


class HubFetcher:
    """Downloads a model's files into a staging directory.

    Args:
        download: fetches one file; defaults to :func:`hub_download`.
    """

    source = "hub"

    def __init__(self, download: HubDownload = hub_download) -> None:
        self._download = download

    def fetch(self, spec: ModelSpec, staging: Path, say: Callable[[str], None]) -> dict[str, str]:
        """Write every file of ``spec`` under ``staging``; return sha256 by store-relative path.

        Raises:
            ModelFetchError: a download failed.
        """
        scratch = staging / ".downloads"
        scratch.mkdir()
        recipe = spec.hub
        if isinstance(recipe, HubVoices):
            return {recipe.target: self._voices(recipe, staging, scratch, say)}
        return self._files(recipe, staging, scratch, say)

    def _files(
        self, recipe: HubRecipe, staging: Path, scratch: Path, say: Callable[[str], None]
    ) -> dict[str, str]:
        say(f"downloading {len(recipe.files)} file{'s' if len(recipe.files) > 1 else ''}...")
        hashes: dict[str, str] = {}
        for item in recipe.files:
            local = self._download(item, scratch)
            target = staging / item.target
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            # Copy, never link: the hub cache may be pruned later.
            with local.open("rb") as source, target.open("wb") as out:
                append_stream(source, out, digest)
            hashes[item.target] = digest.hexdigest()
        return hashes

    def _voices(
        self, recipe: HubVoices, staging: Path, scratch: Path, say: Callable[[str], None]
    ) -> str:
        say(f"downloading {len(recipe.names)} voices from {recipe.repo_id}...")
        voices: list[tuple[str, np.ndarray]] = []
        for name in recipe.names:
            item = HubFile(
                target=f"{recipe.voices_dir}/{name}.bin",
                repo_id=recipe.repo_id,
                filename=f"{recipe.voices_dir}/{name}.bin",
            )
            local = self._download(item, scratch)
            voices.append((name, voice_from_bin(name, local.read_bytes())))
        return write_voices_npz(staging / recipe.target, voices)
