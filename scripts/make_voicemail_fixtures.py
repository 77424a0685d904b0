"""Write the answering-machine test audio as WAVs (8 kHz PCM16, phone line), for listening or
for `sutradhar call --wav`: voicemail greetings in English and Hindi ending in a beep, the same
without the beep, and people saying "hello?". Needs espeak-ng (as the tests do).

    python scripts/make_voicemail_fixtures.py [OUT_DIR]     # default: ./voicemail-fixtures
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from sutradhar.audio.codecs import write_wav_file  # noqa: E402
from tests.support.answers import GREETINGS, RATE, human_hello, machine_greeting  # noqa: E402


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "voicemail-fixtures")
    out.mkdir(parents=True, exist_ok=True)
    for language in GREETINGS:
        pcm, beep_at = machine_greeting(language)
        write_wav_file(str(out / f"machine-{language}-beep.wav"), pcm, RATE)
        print(f"machine-{language}-beep.wav  beep at {beep_at} ms")
        write_wav_file(str(out / f"machine-{language}.wav"), machine_greeting(language, with_beep=False)[0], RATE)
        write_wav_file(str(out / f"human-{language}.wav"), human_hello(language), RATE)
    print(f"wrote {len(list(out.glob('*.wav')))} files to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
