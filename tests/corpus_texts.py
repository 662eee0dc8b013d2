"""The hand-written quality corpora's text, for tests that compare a fast search with a plain one."""

from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def turn_texts() -> list[str]:
    """Every turn of the hand-written corpora: realistic text, clean and defective."""
    texts = []
    for path in sorted(FIXTURES.glob("quality_*/conv_*.json")):
        texts += [turn["content"] for turn in json.loads(path.read_text())["turns"]]
    return texts


def chunk_texts() -> list[str]:
    """Every source excerpt of the hand-written corpora."""
    texts = []
    for path in sorted(FIXTURES.glob("quality_*/business_*.json")):
        texts += [chunk["text"] for chunk in json.loads(path.read_text())["chunks"]]
    return texts
