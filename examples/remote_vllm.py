"""The voice bot with its LLM on a vLLM server (or any OpenAI-compatible endpoint).

Start vLLM on a GPU machine, e.g.::

    vllm serve Qwen/Qwen2.5-7B-Instruct --port 8000 --enable-prefix-caching

then point the bot at it — configuration, not code. Either by environment::

    FRAMECAST_LLM_BASE_URL=http://gpu-box:8000/v1 \\
    FRAMECAST_LLM_MODEL=Qwen/Qwen2.5-7B-Instruct framecast run

or from Python, as below. No local llama.cpp server is started when a URL is set;
vLLM's prefix caching keeps the conversation prefix warm, as llama.cpp slots do locally.
"""

from __future__ import annotations

import asyncio
import os

from framecast.config import Settings
from framecast.server import serve_bot


async def main() -> None:
    settings = Settings(
        llm_base_url=os.environ.get("VLLM_URL", "http://127.0.0.1:8001/v1"),
        llm_model=os.environ.get("VLLM_MODEL", "Qwen/Qwen2.5-7B-Instruct"),
        llm_max_tokens=256,
        llm_temperature=0.6,
    )
    await serve_bot(settings)  # no local llama.cpp server is started when a URL is set


if __name__ == "__main__":
    asyncio.run(main())
