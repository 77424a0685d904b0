"""The scripted conversation every benchmark plays: what the caller says, what the agent answers,
the fixed engine delays, and the critical path those delays put in front of the first audio.

Critical path of one turn (what a perfect orchestrator would still have to wait for):
    STT delay + LLM first token + token delay x (tokens until the first sentence is released)
    + TTS first chunk.
The sentence chunker releases the first sentence when the token *after* its full stop arrives
(a full stop needs the next character to be sure it ends a sentence), so "tokens until released"
is found by replaying the real `SentenceChunker` on the scripted token stream, not guessed.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass

# What the caller says (STT returns these in order) and what the agent answers (LLM, in order).
# Every reply has more than one sentence, so "first audio before the LLM finishes" is checkable.
TRANSCRIPTS = (
    "I would like to know the status of my order.",
    "Can you tell me when it will be delivered?",
    "What is the phone number of your support team?",
    "Could you send me the invoice once more by email?",
)
REPLIES = (
    "Sure, let me check that now. Your order shipped yesterday from our warehouse in Pune and it "
    "is on its way to you. You can track it with the link we sent by message.",
    "It should arrive next Tuesday afternoon. You will get a message when it is out for delivery, "
    "and the driver will call you before reaching your address.",
    "Our support team is always available. The number is printed on your invoice and on our "
    "website, and you can also write to us at any time of the day.",
    "You are very welcome, my friend. Have a wonderful day, and thank you for calling us. Do call "
    "again if there is anything else we can help you with.",
)
# Every reply's first sentence is released by the same token, so the critical path is the same
# whichever reply a turn gets (the shared scripted LLM cycles through them across all calls).


@dataclass
class Delays:
    """Fixed engine delays of the scripted providers, in milliseconds."""

    stt_ms: float = 150.0  # after the utterance is handed to STT (batch)
    stt_streaming: int = 0  # 1: the STT streams (hears the caller while they speak)
    stt_flush_ms: float = 20.0  # streaming: the flush's answer at the end of the turn (a round trip)
    llm_first_token_ms: float = 200.0
    llm_token_ms: float = 10.0  # between tokens after the first
    tts_first_chunk_ms: float = 100.0
    tts_chunk_ms: float = 100.0  # between later chunks (faster than real time: 200 ms of audio each)
    tts_chunk_audio_ms: int = 200  # audio per TTS chunk
    tts_ms_per_char: float = 60.0  # reply audio length per character (about a speaking rate)
    tts_sample_rate: int = 16000

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        d = cls()
        g = p.add_argument_group("scripted engine delays (ms)")
        g.add_argument("--stt-ms", type=float, default=d.stt_ms, help="STT delay (default %(default)s)")
        g.add_argument("--stt-streaming", action="store_true",
                       help="a streaming STT: fed while the caller speaks, only the flush is left")
        g.add_argument("--stt-flush-ms", type=float, default=d.stt_flush_ms,
                       help="streaming STT: flush to final transcript (default %(default)s)")
        g.add_argument("--llm-first-token-ms", type=float, default=d.llm_first_token_ms,
                       help="LLM time to first token (default %(default)s)")
        g.add_argument("--llm-token-ms", type=float, default=d.llm_token_ms,
                       help="LLM delay per later token (default %(default)s)")
        g.add_argument("--tts-first-chunk-ms", type=float, default=d.tts_first_chunk_ms,
                       help="TTS time to first chunk (default %(default)s)")
        g.add_argument("--tts-chunk-ms", type=float, default=d.tts_chunk_ms,
                       help="TTS delay per later chunk (default %(default)s)")
        g.add_argument("--tts-rate", type=int, default=d.tts_sample_rate,
                       help="TTS audio sample rate in Hz (default %(default)s; 8000 = no resampling "
                            "to the phone line)")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Delays:
        return cls(stt_ms=args.stt_ms, stt_streaming=int(bool(getattr(args, "stt_streaming", False))),
                   stt_flush_ms=args.stt_flush_ms, llm_first_token_ms=args.llm_first_token_ms,
                   llm_token_ms=args.llm_token_ms, tts_first_chunk_ms=args.tts_first_chunk_ms,
                   tts_chunk_ms=args.tts_chunk_ms, tts_sample_rate=args.tts_rate)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def to_env(self) -> dict[str, str]:
        return {f"BENCH_{k.upper()}": str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Delays:
        env = dict(os.environ if env is None else env)
        values = {}
        for key, default in asdict(cls()).items():
            raw = env.get(f"BENCH_{key.upper()}")
            if raw is not None:
                values[key] = type(default)(float(raw))
        return cls(**values)


def tokens(text: str) -> list[str]:
    """The scripted LLM's token stream for `text` (same split as ScriptedLLM)."""
    from sutradhar.testing.scripted import _tokens

    return _tokens(text)


def release_token_index(reply: str) -> int:
    """Index of the token whose arrival releases the first speakable chunk of `reply`."""
    from sutradhar.text.sentences import SentenceChunker

    chunker = SentenceChunker()
    toks = tokens(reply)
    for i, tok in enumerate(toks):
        if chunker.push(tok):
            return i
    return len(toks) - 1  # released by the flush at the end of the stream


def critical_path_ms(d: Delays, reply: str | None = None, with_stt: bool = True) -> float:
    """Scripted delays between the end of the utterance and the first TTS chunk of `reply`."""
    k = release_token_index(reply if reply is not None else REPLIES[0])
    stt = d.stt_flush_ms if d.stt_streaming else d.stt_ms
    return (stt if with_stt else 0.0) + d.llm_first_token_ms + k * d.llm_token_ms + d.tts_first_chunk_ms


def llm_total_ms(reply: str, d: Delays) -> float:
    return d.llm_first_token_ms + (len(tokens(reply)) - 1) * d.llm_token_ms


def sentence_count(reply: str) -> int:
    from sutradhar.text.sentences import SentenceChunker

    chunker = SentenceChunker()
    return len([*chunker.push(reply), *chunker.flush()])


def scripted_providers(d: Delays, trace: bool = False) -> tuple[object, object, object]:
    """Scripted STT, LLM and TTS with the delays of `d`, answering the scenario above."""
    from bench.engines import BenchLLM, BenchStreamingSTT, BenchSTT, BenchTTS, OracleSTT

    if os.environ.get("BENCH_ORACLE_STT") == "1":
        stt = OracleSTT(d, trace) if d.stt_streaming else _batch_oracle(d, trace)
    else:
        stt = BenchStreamingSTT(d, trace) if d.stt_streaming else BenchSTT(d, trace)
    return stt, BenchLLM(d, trace), BenchTTS(d, trace)


def _batch_oracle(d: Delays, trace: bool) -> object:
    """The oracle without open_stream: a batch STT, so the session takes the batch path."""
    from bench.engines import OracleSTT, _Engine

    oracle = OracleSTT(d, trace)

    class BatchOracle(_Engine):
        name = "oracle-stt"

        async def transcribe(self, audio: bytes, sample_rate: int, language: str | None = None):
            return await oracle.transcribe(audio, sample_rate, language)

    return BatchOracle()


def reply_for_turn(turn_index: int) -> str:
    """The reply the scripted LLM gives to a call's `turn_index`-th caller turn (0-based)."""
    return REPLIES[turn_index % len(REPLIES)]
