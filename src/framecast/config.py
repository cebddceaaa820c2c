"""Settings of the voice bot: environment (``FRAMECAST_*``), a ``.env`` file, CLI flags.

Precedence: CLI flags > environment > ``.env`` > defaults. Pointing the bot at a
real vLLM server, a bigger Whisper or ElevenLabs is configuration, not code::

    FRAMECAST_LLM_BASE_URL=http://gpu-box:8000/v1 FRAMECAST_LLM_MODEL=Qwen/Qwen2.5-7B-Instruct
    FRAMECAST_STT_MODEL=whisper-base
    FRAMECAST_TTS_ENGINE=elevenlabs ELEVENLABS_API_KEY=... FRAMECAST_ELEVENLABS_VOICE_ID=...
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from framecast.processors.llm import DEFAULT_SYSTEM_PROMPT

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Everything the bot can be told. Field names map to ``FRAMECAST_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="FRAMECAST_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- server -------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    max_sessions: int = Field(10, ge=1, description="concurrent sessions; more are refused (503)")
    max_message_bytes: int = Field(1 << 20, ge=1024, description="largest audio message accepted")
    max_messages_per_s: float = Field(400.0, gt=0, description="incoming message rate per session")

    # --- speech in ------------------------------------------------------------------
    stt_model: str = Field("whisper-tiny.en", description="model store name (or a directory)")
    stt_threads: int = Field(2, ge=1)
    stt_url: str = Field(
        "", description="STT service ws://host:7003 (`framecast serve stt`); empty = in-process"
    )
    energy_threshold: float = Field(600.0, gt=0, description="RMS on PCM16 that counts as voice")
    pause_ms: int = Field(200, ge=40, description="silence that triggers the end-of-turn check")
    vad: bool = Field(False, description="also require Silero VAD to hear speech (noisy rooms)")
    turn_mode: Literal["smart", "silence"] = "smart"
    turn_max_wait_s: float = Field(3.0, gt=0, description="smart mode: a turn always ends by then")
    turn_silence_s: float = Field(0.8, gt=0, description="silence mode: silence that ends a turn")
    emotion_backend: Literal["prosody", "onnx", "off"] = "prosody"
    emotion_onnx_path: str = ""
    emotion_labels: str = Field("", description="comma-separated labels of the ONNX model")

    # --- LLM ------------------------------------------------------------------------
    llm_base_url: str = Field(
        "", description="OpenAI-compatible /v1 URL; empty = embedded llama.cpp"
    )
    llm_model: str = Field(
        "qwen2.5-coder-0.5b",
        description="model id on the endpoint, or the model store's GGUF for the embedded server",
    )
    llm_api_key: SecretStr = Field(
        SecretStr("none"), validation_alias=AliasChoices("FRAMECAST_LLM_API_KEY", "OPENAI_API_KEY")
    )
    llm_max_tokens: int = Field(256, ge=1)
    llm_temperature: float = Field(0.6, ge=0.0, le=2.0)
    llm_history_turns: int = Field(10, ge=0)
    llm_timeout_s: float = Field(30.0, gt=0)
    # Two threads make one conversation fastest (TTFA p50 1.37 s vs 1.62 s with one). Under
    # many sessions one thread degrades less (5 users: p95 5.6 s vs 8.3 s): decoding on two
    # threads stalls whenever STT/TTS take one of the two cores. See README, "Measured".
    llm_threads: int = Field(2, ge=1, description="embedded server: CPU threads (1 for many users)")
    llm_poll: int = Field(50, ge=0, le=100, description="embedded server: busy-wait level 0-100")
    llm_ctx_per_session: int = Field(2048, ge=512, description="embedded server: tokens per slot")
    system_prompt: str = DEFAULT_SYSTEM_PROMPT

    # --- speech out -------------------------------------------------------------------
    tts_engine: Literal["kokoro", "elevenlabs"] = "kokoro"
    tts_voice: str = "af_heart"
    tts_speed: float = Field(1.0, ge=0.5, le=2.0)
    tts_threads: int = Field(2, ge=1)
    tts_url: str = Field(
        "", description="TTS service http://host:7002 (`framecast serve tts`); empty = in-process"
    )
    elevenlabs_api_key: SecretStr = Field(
        SecretStr(""),
        validation_alias=AliasChoices("ELEVENLABS_API_KEY", "FRAMECAST_ELEVENLABS_API_KEY"),
    )
    elevenlabs_voice_id: str = "21m00Tcm4TlvDq8ikWAM"
    elevenlabs_model: str = "eleven_flash_v2_5"
    elevenlabs_base_url: str = "https://api.elevenlabs.io"
