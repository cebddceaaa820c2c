"""The model store: one directory of verified model files, and how to fill it.

Engines ask :meth:`ModelStore.path` for a model and get a path or an error naming the
command that fixes it. ``fetch`` assembles each model in a private staging directory,
checks its sha256 and only then renames it into place, so a crash or a bad download
never leaves a half-written model where an engine would load it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol

from loguru import logger

from framecast.exceptions import ConfigError, ModelFetchError, ModelNotInstalledError
from framecast.models._catalogue import CATALOGUE, DEFAULT_SET, ModelSpec, get_spec
from framecast.models._files import file_sha256, read_sidecar, replace_tree, write_sidecar
from framecast.models._hub import HubFetcher
from framecast.models._registry import RegistryFetcher

__all__ = [
    "FetchResult",
    "Fetcher",
    "ModelSource",
    "ModelStore",
    "default_store_dir",
    "resolve_source",
]

ModelSource = Literal["registry", "hub"]
_SOURCES: tuple[ModelSource, ...] = ("registry", "hub")

Progress = Callable[[str], None]


class Fetcher(Protocol):
    """Writes a model's files into a staging directory (see RegistryFetcher, HubFetcher)."""

    def fetch(self, spec: ModelSpec, staging: Path, say: Progress) -> dict[str, str]:
        """Return sha256 by store-relative path of every file written."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchResult:
    """What ``fetch`` did for one model."""

    name: str
    outcome: Literal["fetched", "present"]
    seconds: float


def default_store_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$FRAMECAST_MODELS_DIR``, else ``$XDG_CACHE_HOME/framecast/models``, else ``~/.cache/…``.

    Follows the XDG rule that a relative ``XDG_CACHE_HOME`` is ignored.
    """
    environ = os.environ if env is None else env
    if override := environ.get("FRAMECAST_MODELS_DIR"):
        return Path(override).expanduser()
    cache = environ.get("XDG_CACHE_HOME", "")
    base = Path(cache) if cache and Path(cache).is_absolute() else Path.home() / ".cache"
    return base / "framecast" / "models"


def resolve_source(value: str | None = None, env: Mapping[str, str] | None = None) -> ModelSource:
    """The source to fetch from: ``value``, else ``$FRAMECAST_MODEL_SOURCE``, else registry.

    Raises:
        ConfigError: the name is neither ``registry`` nor ``hub``.
    """
    environ = os.environ if env is None else env
    chosen = value or environ.get("FRAMECAST_MODEL_SOURCE") or "registry"
    for source in _SOURCES:
        if chosen == source:
            return source
    raise ConfigError(f"unknown model source {chosen!r}; use one of: {', '.join(_SOURCES)}")


def _quiet(_message: str) -> None:
    """Progress sink that drops messages."""


def _prefixed(progress: Progress, prefix: str) -> Progress:
    def say(message: str) -> None:
        progress(prefix + message)

    return say


class ModelStore:
    """A directory of models from the catalogue.

    Args:
        root: the store directory; defaults to :func:`default_store_dir`.
        catalogue: the known models; defaults to framecast's catalogue.
        fetchers: one fetcher per source; defaults to the registry and hub fetchers.
    """

    def __init__(
        self,
        root: Path | None = None,
        *,
        catalogue: Mapping[str, ModelSpec] | None = None,
        fetchers: Mapping[ModelSource, Fetcher] | None = None,
    ) -> None:
        self.root = default_store_dir() if root is None else root
        self._catalogue = dict(CATALOGUE if catalogue is None else catalogue)
        self._fetchers: Mapping[ModelSource, Fetcher] = fetchers or {
            "registry": RegistryFetcher(),
            "hub": HubFetcher(),
        }

    @property
    def specs(self) -> list[ModelSpec]:
        """Every model this store knows, in catalogue order."""
        return list(self._catalogue.values())

    def spec(self, name: str) -> ModelSpec:
        """The spec of ``name``.

        Raises:
            ConfigError: unknown name.
        """
        return get_spec(name, self._catalogue)

    def location(self, name: str) -> Path:
        """Where ``name`` lives (or would live) in the store, installed or not."""
        return self.root / self.spec(name).artefact

    def is_installed(self, name: str) -> bool:
        """Whether every file of ``name`` is present and its pinned file hashes right.

        Hashing is skipped when the ``.sha256`` sidecar matches the file's size and mtime.
        """
        spec = self.spec(name)
        if not all((self.root / file).is_file() for file in spec.files):
            return False
        return self._hash_of(self.root / spec.checked_file) == spec.sha256

    def path(self, name: str) -> Path:
        """The installed artefact of ``name`` (a file, or a directory for Whisper).

        Raises:
            ConfigError: unknown name.
            ModelNotInstalledError: missing or corrupt; the message names the fetch command.
        """
        if not self.is_installed(name):
            raise ModelNotInstalledError(
                f"model {name!r} is not installed in {self.root}; "
                f"run: framecast models fetch {name}"
            )
        return self.location(name)

    def fetch(
        self,
        names: Sequence[str] | None = None,
        *,
        source: ModelSource | None = None,
        progress: Progress = _quiet,
    ) -> list[FetchResult]:
        """Install ``names`` (default: :data:`DEFAULT_SET`), skipping verified ones.

        Every model is attempted even if an earlier one fails; ``progress`` gets one line
        per step and a final summary.

        Raises:
            ConfigError: unknown name or source.
            ModelFetchError: at least one model failed (the message lists each failure);
                nothing partial of a failed model is left in the store.
        """
        wanted = list(dict.fromkeys(DEFAULT_SET if names is None else names))
        specs = [self.spec(name) for name in wanted]
        chosen = resolve_source(source)
        fetcher = self._fetchers.get(chosen)
        if fetcher is None:
            raise ConfigError(f"this store has no fetcher for the {chosen!r} source")
        self.root.mkdir(parents=True, exist_ok=True)
        results: list[FetchResult] = []
        failures: list[str] = []
        for index, spec in enumerate(specs, start=1):
            say = _prefixed(progress, f"[{index}/{len(specs)}] {spec.name}: ")
            try:
                results.append(self._fetch_one(spec, fetcher, chosen, say))
            except (ModelFetchError, OSError) as exc:
                say(f"FAILED: {exc}")
                failures.append(f"{spec.name}: {exc}")
        fetched = sum(result.outcome == "fetched" for result in results)
        progress(
            f"models: {fetched} fetched, {len(results) - fetched} already installed, "
            f"{len(failures)} failed (source: {chosen}, store: {self.root})"
        )
        if failures:
            raise ModelFetchError("fetch failed for " + "; ".join(failures))
        return results

    def _fetch_one(
        self, spec: ModelSpec, fetcher: Fetcher, source: str, say: Progress
    ) -> FetchResult:
        started = time.perf_counter()
        if self.is_installed(spec.name):
            say("already installed")
            return FetchResult(
                name=spec.name, outcome="present", seconds=time.perf_counter() - started
            )
        self._install(spec, fetcher, source, say)
        seconds = time.perf_counter() - started
        say(f"installed, sha256 ok ({spec.size / 1e6:.1f} MB, {seconds:.1f} s)")
        return FetchResult(name=spec.name, outcome="fetched", seconds=seconds)

    def _install(self, spec: ModelSpec, fetcher: Fetcher, source: str, say: Progress) -> None:
        staging = Path(tempfile.mkdtemp(prefix=f".fetch-{spec.name}-", dir=self.root))
        try:
            hashes = fetcher.fetch(spec, staging, say)
            missing = [file for file in spec.files if not (staging / file).is_file()]
            if missing:
                raise ModelFetchError(f"source {source} did not provide {', '.join(missing)}")
            got = hashes.get(spec.checked_file) or file_sha256(staging / spec.checked_file)
            if got != spec.sha256:
                raise ModelFetchError(
                    f"sha256 mismatch for {spec.checked_file} from {source}: "
                    f"expected {spec.sha256}, got {got}; nothing was installed"
                )
            for top in _top_level(spec.files):
                replace_tree(staging / top, self.root / top)
            write_sidecar(self.root / spec.checked_file, got)
            logger.debug("installed model {} from {} into {}", spec.name, source, self.root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _hash_of(self, path: Path) -> str:
        remembered = read_sidecar(path)
        if remembered is not None:
            return remembered
        digest = file_sha256(path)
        try:
            write_sidecar(path, digest)
        except OSError:  # a read-only store still works, it just hashes every time
            logger.debug("cannot write sidecar for {}", path)
        return digest


def _top_level(files: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(PurePosixPath(file).parts[0] for file in files))
