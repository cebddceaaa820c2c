"""The voice bot, composed by hand: every stage of the pipeline in one list.

    .venv/bin/python examples/voice_bot.py          # then open http://127.0.0.1:8000/

Same as ``framecast run``, but the pipeline is yours to change: drop the emotion
tagger, swap the turn detector for silence mode, add your own processor.
"""

from __future__ import annotations

import asyncio

from framecast import Parallel, Processor
from framecast.bot import Services, SessionPipeline
from framecast.config import Settings
from framecast.processors import (
    EmotionTagger,
    EnergyGate,
    KokoroTTS,
    SentenceAggregator,
    SmartTurn,
    VLLMChat,
    WhisperSTT,
)
from framecast.server import serve_bot


def my_pipeline(
    services: Services, mic: Processor, speaker: Processor, slot: int | None
) -> SessionPipeline:
    """One session: microphone in, speaker out, the shared models in between."""
    s = services
    return SessionPipeline(
        [
            mic,
            EnergyGate(threshold=600),
            WhisperSTT(s.stt, s.stt_pool),
            SmartTurn(s.turn, s.turn_pool, max_wait_s=3.0),
            Parallel([EmotionTagger(s.emotion, s.emotion_pool)], []),  # a side analysis
            VLLMChat(
                s.llm_client,
                model=s.llm_model,
                system_prompt="You are a cheerful pirate. Answer in one short sentence.",
                extra_body={"id_slot": slot, "cache_prompt": True} if slot is not None else None,
            ),
            SentenceAggregator(),
            KokoroTTS(s.tts, s.tts_pool, voice="am_michael"),
            speaker,
        ]
    )


async def main() -> None:
    # Models and the LLM server are loaded once and shared by all sessions.
    await serve_bot(Settings(port=8000), pipeline=my_pipeline)


if __name__ == "__main__":
    asyncio.run(main())
