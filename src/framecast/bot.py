"""The voice bot: shared services, loaded once, and the pipeline each session gets.

:class:`Services` loads every model once per process (in worker threads, so the
loop stays free), starts the embedded llama.cpp server unless an LLM URL is
configured, and hands out llama.cpp slots so each conversation keeps its prompt
cache. :func:`build_pipeline` composes the processors for one connection::

    input → EnergyGate → WhisperSTT → SmartTurn → [EmotionTagger ‖ ·] → VLLMChat
          → SentenceAggregator → KokoroTTS | ElevenLabsTTS → output
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

from framecast.config import Settings
from framecast.exceptions import ConfigError, ProtocolError
from framecast.models import DEFAULT_SET, ModelStore
from framecast.pipeline import Parallel
from framecast.processor import Processor
from framecast.processors import (
    ElevenLabsTTS,
    EmotionTagger,
    EnergyGate,
    KokoroTTS,
    SentenceAggregator,
    SmartTurn,
    TTSProcessor,
    VLLMChat,
    WhisperSTT,
)
from framecast.transports.protocol import Hello
from framecast.workers import WorkerPool

__all__ = ["PipelineFactory", "Services", "SessionPipeline", "build_pipeline"]

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class SessionPipeline:
    """What a session runs: its processors, and how to apply a client's ``hello``."""

    processors: list[Processor]
    on_hello: Callable[[Hello], Awaitable[None]] | None = None


#: Builds one session's pipeline: (services, transport input, transport output, llama.cpp slot).
PipelineFactory = Callable[["Services", Processor, Processor, "int | None"], SessionPipeline]


class Services:
    """Models, worker pools and the LLM endpoint, shared by all sessions.

    Args:
        settings: the bot's settings.
        store: where models are found (and fetched to, if missing).
    """

    def __init__(self, settings: Settings, store: ModelStore | None = None) -> None:
        self.settings = settings
        self.store = store or ModelStore()
        self.stt: Any = None
        self.turn: Any = None
        self.emotion: Any = None
        self.vad: Any = None
        self.tts: Any = None
        self.llm_server: Any = None
        self.llm_client: Any = None
        self.llm_model = settings.llm_model
        # A remote decode waits on the service, not on this CPU: one connection per session.
        stt_workers = settings.max_sessions if settings.stt_url else 1
        self.stt_pool = WorkerPool(stt_workers, name="framecast-stt")
        self.turn_pool = WorkerPool(1, name="framecast-turn")
        self.emotion_pool = WorkerPool(1, name="framecast-emotion")
        self.tts_pool = WorkerPool(1, name="framecast-tts")
        self._free_slots: list[int] = []
        self.ready = False

    # --- start / stop ------------------------------------------------------------------

    async def start(self, progress: Progress = logger.info) -> None:
        """Fetch missing models, load them, start the LLM server; return when all are ready."""
        s = self.settings
        started = time.perf_counter()
        await asyncio.to_thread(self._fetch_missing, progress)
        from framecast.engines import KokoroEngine, SmartTurnEngine, WhisperEngine

        if s.stt_url:
            from framecast.engines.remote import RemoteSTTEngine

            progress(f"using the STT service at {s.stt_url}")
            self.stt = RemoteSTTEngine(s.stt_url)
        else:
            progress(f"loading Whisper ({s.stt_model})")
            self.stt = await asyncio.to_thread(
                WhisperEngine, self._model_path(s.stt_model), cpu_threads=s.stt_threads
            )
        if s.turn_mode == "smart":
            progress("loading Smart Turn v3.2")
            self.turn = await asyncio.to_thread(
                SmartTurnEngine, self.store.path("smart-turn-v3.2"), threads=1
            )
        self.emotion = await asyncio.to_thread(self._emotion_backend)
        if s.vad:
            from framecast.engines import SileroVAD

            progress("loading Silero VAD")
            self.vad = await asyncio.to_thread(SileroVAD, self.store.path("silero-vad"))
        if s.tts_url:
            from framecast.engines.remote import RemoteTTSEngine

            progress(f"using the TTS service at {s.tts_url}")
            self.tts = RemoteTTSEngine(s.tts_url, voice=s.tts_voice, speed=s.tts_speed)
        elif s.tts_engine == "kokoro":
            progress(f"loading Kokoro ({s.tts_voice})")
            self.tts = await asyncio.to_thread(
                KokoroEngine,
                self.store.path("kokoro-int8"),
                self.store.path("kokoro-voices"),
                threads=s.tts_threads,
            )
            if s.tts_voice not in self.tts.voices():
                raise ConfigError(f"unknown Kokoro voice {s.tts_voice!r}")
        else:
            self.tts = self._elevenlabs()
        await self._start_llm(progress)
        progress("warming up")
        # First calls pay for allocations (ONNX Runtime's first run costs ~0.5 s):
        # pay them now, not in the first user's turn.
        await self.stt_pool.run(self.stt.warmup)
        if hasattr(self.tts, "warmup"):
            await self.tts_pool.run(self.tts.warmup)
        silence = np.zeros(16000, dtype=np.float32)
        if self.turn is not None:
            await self.turn_pool.run(self.turn.predict, silence)
        if self.emotion is not None:
            await self.emotion_pool.run(self.emotion.classify, silence, "hello")
        self.ready = True
        progress(f"ready in {time.perf_counter() - started:.1f} s")

    async def aclose(self) -> None:
        """Stop the LLM server and the worker threads (idempotent)."""
        self.ready = False
        if self.llm_client is not None:
            await self.llm_client.close()
            self.llm_client = None
        if self.llm_server is not None:
            await self.llm_server.aclose()
            self.llm_server = None
        if self.tts is not None and hasattr(self.tts, "aclose"):
            await self.tts.aclose()
        if self.stt is not None and hasattr(self.stt, "close"):
            await asyncio.to_thread(self.stt.close)  # blocks for WebSocket close handshakes
        for pool in (self.stt_pool, self.turn_pool, self.emotion_pool, self.tts_pool):
            pool.close()

    def _fetch_missing(self, progress: Progress) -> None:
        s = self.settings
        known = {spec.name: spec for spec in self.store.specs}
        served = {"llm"} | ({"stt"} if s.stt_url else set())
        served |= {"tts", "voices"} if s.tts_url else set()
        needed = {n for n in DEFAULT_SET if known[n].kind not in served}
        if not s.stt_url:
            needed.add(s.stt_model)
        if not s.llm_base_url:
            needed.add(s.llm_model)
        missing = sorted(n for n in needed if n in known and not self.store.is_installed(n))
        if missing:
            progress(f"fetching models: {', '.join(missing)}")
            self.store.fetch(missing, progress=progress)

    def _model_path(self, name: str) -> Path:
        path = Path(name)
        return path if path.is_dir() else self.store.path(name)

    def _emotion_backend(self) -> Any:
        s = self.settings
        from framecast.engines import OnnxEmotionBackend, ProsodyLexicalBackend

        if s.emotion_backend == "off":
            return None
        if s.emotion_backend == "onnx":
            labels = [label.strip() for label in s.emotion_labels.split(",") if label.strip()]
            if not s.emotion_onnx_path or not labels:
                raise ConfigError(
                    "the onnx emotion backend needs emotion_onnx_path and emotion_labels"
                )
            return OnnxEmotionBackend(s.emotion_onnx_path, labels)
        return ProsodyLexicalBackend()

    def _elevenlabs(self) -> Any:
        from framecast.engines import ElevenLabsEngine

        s = self.settings
        return ElevenLabsEngine(
            s.elevenlabs_api_key.get_secret_value(),
            s.elevenlabs_voice_id,
            model_id=s.elevenlabs_model,
            base_url=s.elevenlabs_base_url,
        )

    async def _start_llm(self, progress: Progress) -> None:
        from openai import AsyncOpenAI

        s = self.settings
        base_url = s.llm_base_url
        if not base_url:
            from framecast.engines import LlamaServer

            progress(f"starting the llama.cpp server ({s.llm_model})")
            self.llm_server = LlamaServer(
                self.store.path(s.llm_model),
                n_ctx=s.llm_ctx_per_session,
                n_parallel=s.max_sessions,
                threads=s.llm_threads,
                poll=s.llm_poll,
                alias="local",
            )
            await self.llm_server.start()
            base_url = self.llm_server.base_url
            self.llm_model = self.llm_server.alias
            self._free_slots = list(range(s.max_sessions))
        self.llm_client = AsyncOpenAI(
            base_url=base_url, api_key=s.llm_api_key.get_secret_value(), max_retries=0
        )

    # --- per session ----------------------------------------------------------------------

    def take_slot(self) -> int | None:
        """A llama.cpp slot for a new session (None for a remote LLM or when all are taken)."""
        return self._free_slots.pop(0) if self._free_slots else None

    def give_back_slot(self, slot: int | None) -> None:
        """Return a session's slot."""
        if slot is not None:
            self._free_slots.append(slot)

    async def health(self) -> dict[str, Any]:
        """Status of each stage; ``ok`` only when every model is loaded and the LLM answers."""
        llm_ok = await self._llm_reachable()
        stages: dict[str, dict[str, Any]] = {
            "stt": {"ready": self.stt is not None, "model": self.settings.stt_model},
            "turn": {"ready": self.turn is not None or self.settings.turn_mode == "silence",
                     "mode": self.settings.turn_mode},
            "emotion": {"ready": self.emotion is not None or self.settings.emotion_backend == "off",
                        "backend": self.settings.emotion_backend},
            "tts": {"ready": self.tts is not None, "engine": self.settings.tts_engine},
            "llm": {"ready": llm_ok, "reachable": llm_ok, "model": self.llm_model,
                    "embedded": self.llm_server is not None},
        }  # fmt: skip
        ok = self.ready and all(stage["ready"] for stage in stages.values())
        return {
            "status": "ok" if ok else "starting" if not self.ready else "degraded",
            "stages": stages,
        }

    async def _llm_reachable(self) -> bool:
        if self.llm_client is None:
            return False
        try:
            await asyncio.wait_for(self.llm_client.models.list(), timeout=2.0)
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            return False
        return True


def build_pipeline(
    services: Services, transport_input: Processor, transport_output: Processor, slot: int | None
) -> SessionPipeline:
    """The default voice-bot pipeline for one session (a :data:`PipelineFactory`)."""
    s = services.settings
    extra_body = {"id_slot": slot, "cache_prompt": True} if slot is not None else None
    tts: TTSProcessor
    if s.tts_engine == "kokoro" and not s.tts_url:
        tts = KokoroTTS(services.tts, services.tts_pool, voice=s.tts_voice, speed=s.tts_speed)
    else:
        tts = ElevenLabsTTS(services.tts)  # any async engine: ElevenLabs or the TTS service
    processors: list[Processor] = [
        transport_input,
        EnergyGate(threshold=s.energy_threshold, pause_ms=s.pause_ms, vad=services.vad),
        WhisperSTT(services.stt, services.stt_pool),
        SmartTurn(
            services.turn,
            services.turn_pool,
            mode=s.turn_mode,
            max_wait_s=s.turn_max_wait_s,
            silence_s=s.turn_silence_s,
        ),
    ]
    if services.emotion is not None:
        processors.append(Parallel([EmotionTagger(services.emotion, services.emotion_pool)], []))
    processors += [
        VLLMChat(
            services.llm_client,
            model=services.llm_model,
            system_prompt=s.system_prompt,
            max_tokens=s.llm_max_tokens,
            temperature=s.llm_temperature,
            history_turns=s.llm_history_turns,
            extra_body=extra_body,
            timeout_s=s.llm_timeout_s,
        ),
        SentenceAggregator(),
        tts,
        transport_output,
    ]
    return SessionPipeline(processors, on_hello=partial(apply_hello, services, tts))


async def apply_hello(services: Services, tts: TTSProcessor, hello: Hello) -> None:
    """Apply a client's hello settings (currently ``voice``) to its session."""
    voice = hello.settings.get("voice")
    if voice is None:
        return
    s = services.settings
    if s.tts_url or s.tts_engine != "kokoro" or voice not in services.tts.voices():
        raise ProtocolError(f"unknown voice {voice!r}", code="bad_setting")
    tts.set_voice(str(voice))
