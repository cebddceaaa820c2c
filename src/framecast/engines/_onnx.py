"""One way to open an ONNX Runtime session for every ONNX engine.

The thread budget is explicit, and idle worker threads do not spin: ORT's default
busy-wait keeps a core hot between calls, which on a 2-core machine shared by STT,
TTS and the LLM made Kokoro ~40 % slower under contention (1.5 s vs 1.05 s for a
6-word sentence, measured here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from framecast.exceptions import EngineError, ModelNotInstalledError

__all__ = ["open_session"]


def open_session(path: str | Path, *, threads: int, what: str, service: str) -> Any:
    """Load ``path`` on the CPU with ``threads`` intra-op threads.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (inter-op is 1: these graphs are sequential).
        what: the model, for messages ("Smart Turn model").
        service: the ``service`` of an :class:`EngineError`.

    Raises:
        ModelNotInstalledError: the file does not exist (the message names the fix).
        EngineError: ONNX Runtime cannot load it.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelNotInstalledError(
            f"no {what} at {path}; install it with `framecast models fetch` "
            "or pass the path of the .onnx file"
        )
    # Imported here so that importing framecast.engines does not need the speech extra.
    import onnxruntime as ort  # type: ignore[import-untyped]

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf/... types
        raise EngineError(f"could not load the {what} {path}: {exc}", service=service) from exc
