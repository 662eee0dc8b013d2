"""Train the learned word models of ``chalicelib/quality/style_model.py`` and measure how
well they carry to a corpus they were not trained on.

    .venv/bin/python bench/style_models.py                # leave-one-corpus-out figures
    .venv/bin/python bench/style_models.py --write        # retrain the shipped file
    .venv/bin/python bench/style_models.py --write --exclude holdout10   # keep one unseen

Training reads the hand-written corpora (``tests/fixtures/quality_*``). The speaker and
last-turn models learn from clean conversations alone: the labels are the turns' own
roles and positions. The refusal model learns from the sentences each refused copy added
to its clean source, against clean answers; the drift model from the sentences each
drifted copy added, against the later turns of clean conversations. The evaluation holds
out each corpus in turn, trains on the others, and reports on the held-out one what the
defect checks would see:
for role confusion, the wrong-side lean of the planted turns against the most
wrong-sided turn of each clean conversation; for a dropped ending, the last turn's lean
against clean last turns; for a refusal, the planted turn's lean against the most
refusal-like answer of each clean conversation; for a drift, the closing turns' drift
lean against each clean conversation's. All at the thresholds the checks use.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chalicelib.quality import defects  # noqa: E402
from chalicelib.quality import style_model as sm  # noqa: E402
from chalicelib.quality.text import sentences  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"

Conversation = dict[str, Any]


def _sources(folder: Path) -> dict[str, str]:
    """Defective id -> the clean id it was copied from (the manifests have two layouts)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    defective = manifest.get("defective", {})
    if isinstance(defective, list):
        return {d["id"]: d["derived_from"] for d in defective}
    return {k: v["derived_from"] for k, v in defective.items()}


def load_corpora(exclude: tuple[str, ...] = ()) -> dict[str, list[Conversation]]:
    """Each corpus's conversations; a defective one carries its clean source's turns as
    ``source_turns``, so what was planted can be told from what was copied."""
    corpora: dict[str, list[Conversation]] = {}
    for folder in sorted(FIXTURES.glob("quality_*")):
        name = folder.name.removeprefix("quality_")
        if name in exclude or not folder.is_dir():
            continue
        conversations = [json.loads(p.read_text()) for p in sorted(folder.glob("conv_*.json"))]
        by_id = {c["id"]: c for c in conversations}
        for c, source in ((c, _sources(folder).get(c["id"])) for c in conversations):
            if c.get("defect") and source in by_id:
                c["source_turns"] = by_id[source]["turns"]
        corpora[name] = conversations
    return corpora


def planted(conversation: Conversation, number: int) -> str:
    """The sentences of turn ``number`` that its clean source does not have: the defect's
    own words, without the business's words the copy kept."""
    text = conversation["turns"][number - 1]["content"]
    source = conversation.get("source_turns") or []
    if number > len(source):
        return text
    kept = set(sentences(source[number - 1]["content"]))
    return " ".join(s for s in sentences(text) if s not in kept)


def _clean(conversations: list[Conversation]) -> list[list[dict[str, str]]]:
    return [c["turns"] for c in conversations if not c.get("defect")]


def train_models(conversations: list[Conversation]) -> list[sm.LeanModel]:
    clean = _clean(conversations)
    speaker = sm.train(
        "speaker",
        "assistant",
        "user",
        (t["content"] for turns in clean for t in turns if t["role"] == "assistant"),
        (t["content"] for turns in clean for t in turns if t["role"] == "user"),
    )
    endings = [turns for turns in clean if turns and turns[-1]["role"] == "assistant"]
    last_turn = sm.train(
        "last_turn",
        "last",
        "middle",
        (turns[-1]["content"] for turns in endings),
        (t["content"] for turns in endings for t in turns[:-1] if t["role"] == "assistant"),
    )
    # Only the planted words: the rest of a refused turn is the business's own vocabulary,
    # which would teach the model that a business's words are a refusal.
    refused = [
        planted(c, i)
        for c in conversations
        if (c.get("defect") or {}).get("kind") == "ai_refusal"
        for i in c["defect"]["turns"]
        if c["turns"][i - 1]["role"] == "assistant"
    ]
    refusal = sm.train(
        "refusal",
        "refused",
        "answered",
        refused,
        (t["content"] for turns in clean for t in turns if t["role"] == "assistant"),
    )
    # The drift's own sentences against the later turns of clean conversations (an
    # opening's greetings would teach it that "hi" is on the plan).
    drifted = [
        planted(c, i)
        for c in conversations
        if (c.get("defect") or {}).get("kind") == "topic_drift"
        for i in c["defect"]["turns"]
        if i <= len(c["turns"])
    ]
    drift = sm.train(
        "drift",
        "drifted",
        "on_plan",
        drifted,
        (t["content"] for turns in clean for t in turns[len(turns) // 3 :]),
    )
    return [speaker, last_turn, refusal, drift]


def _wrong_side(model: sm.LeanModel, turn: dict[str, str]) -> float:
    return defects.wrong_side_lean(model, turn["role"], turn["content"])


def _cut(text: str) -> bool:
    return defects._ends_cut(text) is not None


@dataclass
class Signal:
    """One model's evidence on a held-out corpus: the planted turns' values and each clean
    conversation's worst value, oriented so that higher is more suspect."""

    label: str
    threshold: float
    hits: list[float] = field(default_factory=list)
    clean: list[float] = field(default_factory=list)

    def found(self, values: list[float]) -> int:
        return sum(v >= self.threshold for v in values)


def _signals() -> list[Signal]:
    return [
        Signal("role flips (wrong-side lean)", defects.SPEAKER_FLAG),
        Signal("dropped endings (minus the last turn's lean)", -defects.LAST_TURN_FLAG),
        Signal("refusals (refusal lean)", defects.REFUSAL_FLAG),
        Signal("drifts (closing turns' drift lean)", defects.DRIFT_LEAN_FLAG),
    ]


def _measure(models: list[sm.LeanModel], conversations: list[Conversation]) -> list[Signal]:
    speaker, last_turn, refusal, drift = models
    role, ending, refused, drifted = _signals()
    for c in conversations:
        defect = c.get("defect")
        turns = c["turns"]
        answers = [t["content"] for t in turns if t["role"] == "assistant"]
        last = turns[-1]
        end = -last_turn.lean(last["content"]) if last["role"] == "assistant" else None
        closing = (
            defects.drift_lean(drift, [t["content"] for t in turns])[0]
            if len(turns) >= defects.MIN_DRIFT_TURNS
            else None
        )
        if not defect:
            if closing is not None:
                drifted.clean.append(closing)
            role.clean.append(max(_wrong_side(speaker, t) for t in turns))
            refused.clean.append(max(refusal.lean(a) for a in answers))
            if end is not None:
                ending.clean.append(end)
            continue
        planted = [turns[i - 1] for i in defect["turns"]]
        if defect["kind"] == "role_confusion":
            role.hits.append(max(_wrong_side(speaker, t) for t in planted))
        elif defect["kind"] == "truncated_ending" and end is not None and not _cut(last["content"]):
            ending.hits.append(end)
        elif defect["kind"] == "ai_refusal":
            said = [t["content"] for t in planted if t["role"] == "assistant"]
            if said:
                refused.hits.append(max(refusal.lean(a) for a in said))
        elif defect["kind"] == "topic_drift" and closing is not None:
            drifted.hits.append(closing)
    return [role, ending, refused, drifted]


def evaluate(corpora: dict[str, list[Conversation]], sweep: bool = False) -> None:
    totals = _signals()
    header = "".join(f"{s.label.split(' (')[0]:>26}" for s in totals)
    print(f"{'held out':<12}{header}")
    print(f"{'':<12}" + "".join(f"{'found  clean flagged':>26}" for _ in totals))
    for held, conversations in corpora.items():
        rest = [c for name, convs in corpora.items() if name != held for c in convs]
        measured = _measure(train_models(rest), conversations)
        cells = ""
        for total, signal in zip(totals, measured, strict=True):
            total.hits += signal.hits
            total.clean += signal.clean
            cell = (
                f"{signal.found(signal.hits)}/{len(signal.hits)}"
                f"  {signal.found(signal.clean)}/{len(signal.clean)}"
            )
            cells += f"{cell:>26}"
        print(f"{held:<12}{cells}")
    print()
    for s in totals:
        print(
            f"{s.label}: {s.found(s.hits)}/{len(s.hits)} found at >= {s.threshold:g}; clean "
            f"conversations there {s.found(s.clean)}/{len(s.clean)}; AUC {_auc(s.hits, s.clean):.3f}"
        )
    if sweep:
        for s in totals:
            _sweep(s.label, s.hits, s.clean)


def _sweep(label: str, hits: list[float], clean: list[float]) -> None:
    """Recall against clean conversations flagged, at the thresholds that separate them."""
    print(f"\n{label}: threshold, found, clean flagged")
    for threshold in sorted({round(x, 2) for x in hits}, reverse=True):
        found = sum(h >= threshold for h in hits)
        false = sum(c >= threshold for c in clean)
        print(f"  {threshold:>6.2f} {found:>4}/{len(hits)} {false:>4}/{len(clean)}")


def _auc(positive: list[float], negative: list[float]) -> float:
    if not positive or not negative:
        return float("nan")
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positive for n in negative)
    return wins / (len(positive) * len(negative))


def write(corpora: dict[str, list[Conversation]]) -> None:
    conversations = [c for convs in corpora.values() for c in convs]
    models = train_models(conversations)
    meta = {
        "trained_on": sorted(corpora),
        "clean_conversations": len(_clean(conversations)),
        "trainer": "bench/style_models.py",
    }
    sm.MODELS_PATH.write_text(sm.dump(models, meta), encoding="utf-8")
    sizes = ", ".join(f"{m.name} {len(m.weights)} features" for m in models)
    print(f"wrote {sm.MODELS_PATH.relative_to(ROOT)}: {sizes}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="retrain the shipped models")
    parser.add_argument("--sweep", action="store_true", help="recall at every threshold")
    parser.add_argument("--exclude", nargs="*", default=[], help="corpora to leave out")
    args = parser.parse_args()
    corpora = load_corpora(tuple(args.exclude))
    if args.write:
        write(corpora)
    else:
        evaluate(corpora, args.sweep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
