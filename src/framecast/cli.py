"""The ``framecast`` command: ``run`` the voice bot, manage ``models``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

from framecast.models.cli import add_models_parser

__all__ = ["main"]

# CLI flag -> Settings field. Flags override the environment and .env.
_RUN_FLAGS: dict[str, tuple[str, type, str]] = {
    "--host": ("host", str, "address to bind"),
    "--port": ("port", int, "TCP port"),
    "--llm-url": ("llm_base_url", str, "OpenAI-compatible /v1 URL (vLLM...); default: embedded"),
    "--llm-model": ("llm_model", str, "model id on the endpoint, or a store GGUF name"),
    "--stt-model": ("stt_model", str, "model store name, e.g. whisper-base"),
    "--stt-url": ("stt_url", str, "STT service ws://host:7003; default: in-process Whisper"),
    "--tts-url": ("tts_url", str, "TTS service http://host:7002; default: in-process"),
    "--tts": ("tts_engine", str, "kokoro | elevenlabs"),
    "--voice": ("tts_voice", str, "TTS voice, e.g. af_heart"),
    "--turn-mode": ("turn_mode", str, "smart | silence"),
    "--energy-threshold": ("energy_threshold", float, "RMS on PCM16 that counts as voice"),
    "--max-sessions": ("max_sessions", int, "concurrent sessions"),
    "--system-prompt": ("system_prompt", str, "the LLM's system prompt"),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="framecast", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the voice bot (browser client at the printed URL)")
    for flag, (_field, kind, help_text) in _RUN_FLAGS.items():
        run.add_argument(flag, type=kind, help=help_text)
    run.add_argument("--log-level", default=os.environ.get("FRAMECAST_LOG_LEVEL", "INFO"))
    run.set_defaults(handler=_run)
    serve = commands.add_parser(
        "serve", help="run a standalone STT or TTS service (framecast serve stt --help)"
    )
    serve.add_argument("service", choices=["stt", "tts"])
    serve.add_argument("options", nargs=argparse.REMAINDER, help="the service's own options")
    serve.set_defaults(handler=_serve_service)
    add_models_parser(commands)
    return parser


def _run(args: argparse.Namespace) -> int:
    from loguru import logger

    from framecast.config import Settings
    from framecast.exceptions import FramecastError
    from framecast.server import serve_bot

    logger.remove()
    logger.add(sys.stderr, level=args.log_level.upper())
    overrides: dict[str, Any] = {
        field: getattr(args, flag.lstrip("-").replace("-", "_"))
        for flag, (field, _kind, _help) in _RUN_FLAGS.items()
        if getattr(args, flag.lstrip("-").replace("-", "_")) is not None
    }
    try:
        settings = Settings(**overrides)
        asyncio.run(serve_bot(settings, progress=_progress))
    except FramecastError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _serve_service(args: argparse.Namespace) -> int:
    from framecast.services import stt_service, tts_service

    serve_main = stt_service.main if args.service == "stt" else tts_service.main
    return serve_main(args.options)


def _progress(line: str) -> None:
    print(f"framecast: {line}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
