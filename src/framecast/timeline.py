"""Per-turn latency timelines.

Each turn records when its stages happened, on the session's clock. The first
mark of a stage wins (a later duplicate is ignored), so a processor can mark
"first LLM token" on every token without checking. Durations are reported in
milliseconds from the end of the user's speech, the moment a person starts
waiting — the honest origin for voice latency.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

__all__ = ["STAGES", "Timeline", "TimelineBook"]

#: Stage names in the order they normally happen.
STAGES: tuple[str, ...] = (
    "user_speech_end",  # the gate's last voiced frame of the utterance
    "end_of_turn",  # the turn detector decided the user is done
    "transcript_final",  # the final transcript is known
    "llm_request",  # the LLM request was sent
    "llm_first_token",  # the first reply token arrived
    "first_sentence",  # the first speakable chunk was cut
    "tts_first_audio",  # the TTS produced its first audio
    "first_audio_out",  # the first reply audio left for the client
    "reply_done",  # the reply's last audio left (or it was cut)
)


@dataclass(slots=True)
class Timeline:
    """Stage timestamps of one turn (seconds, session clock)."""

    turn: int
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, stage: str, ts: float) -> None:
        """Record ``stage`` at ``ts`` unless it was already recorded."""
        self.marks.setdefault(stage, ts)

    def move(self, stage: str, ts: float) -> None:
        """Record ``stage`` at ``ts``, replacing an earlier mark (e.g. the *last* pause)."""
        self.marks[stage] = ts

    def origin(self) -> float | None:
        """End of user speech if known, else the earliest mark."""
        if "user_speech_end" in self.marks:
            return self.marks["user_speech_end"]
        return min(self.marks.values(), default=None)

    def durations_ms(self) -> dict[str, float]:
        """Each stage's time after the origin, in ms (``<stage>_ms`` keys), in stage order."""
        origin = self.origin()
        if origin is None:
            return {}
        order = {name: i for i, name in enumerate(STAGES)}
        stages = sorted(self.marks, key=lambda s: (order.get(s, len(order)), self.marks[s]))
        return {f"{s}_ms": round((self.marks[s] - origin) * 1000.0, 1) for s in stages}


class TimelineBook:
    """The timelines of a session's recent turns (bounded: old turns are forgotten).

    Args:
        keep: how many turns to remember.
    """

    def __init__(self, keep: int = 32) -> None:
        self._keep = keep
        self._by_turn: OrderedDict[int, Timeline] = OrderedDict()

    def get(self, turn: int) -> Timeline:
        """The timeline of ``turn``, created on first use."""
        timeline = self._by_turn.get(turn)
        if timeline is None:
            timeline = self._by_turn[turn] = Timeline(turn)
            while len(self._by_turn) > self._keep:
                self._by_turn.popitem(last=False)
        return timeline

    def pop(self, turn: int) -> Timeline | None:
        """Remove and return ``turn``'s timeline, if any."""
        return self._by_turn.pop(turn, None)
