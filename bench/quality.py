"""Quality score benchmark: does the score tell a good conversation from a broken one?

    .venv/bin/python bench/quality.py [--clean 300] [--per-kind 30] [--seed 20261126]
                                      [--index-size 10000] [--diversity-size 1000]
                                      [--no-corpus] [--show-misses]

Three sources of conversations, each scored exactly as the service scores them
(``score_conversation`` with the dataset's taxonomy, the conversation's excerpt, the
business's rules, and near-duplicates from the dataset-wide index):

- **simulator**: clean conversations the offline simulator writes on the sample dataset
  (every tier; scenario ones with their excerpt), and for each defect kind of
  ``devstack/sim_defects.py`` the same kind of conversation with that defect
  planted;
- **corpus**: ``tests/fixtures/quality_corpus/``, hand-written realistic conversations of
  eight businesses, clean and each with one planted defect of eleven kinds, written
  without sight of the checks (its README says how);
- **structural**: synthetic conversations with near-duplicates, too few turns, broken
  alternation and empty turns (``devstack/synthetic.py``).

Prints, per defect kind and source, how many are flagged (recall) and the mean score; per
check, how often it raises a flag on clean conversations (false positives); the AUC of
the score (clean vs defective, by source and overall); scoring time per conversation;
and near-duplicate indexing time. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chalicelib.domain.models import (  # noqa: E402
    Conversation,
    QualityReport,
    QualityRules,
    Taxonomy,
    Tier,
    Turn,
)
from chalicelib.quality import duplicates as d  # noqa: E402
from chalicelib.quality.scoring import (  # noqa: E402
    ScoringContext,
    clear_caches,
    score_conversation,
)
from devstack import sim_defects  # noqa: E402
from devstack import synthetic as syn  # noqa: E402
from devstack.llm_simulator import parse_prompt_params, write_conversation  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
CORPUS = FIXTURES / "quality_corpus"
# The hand-written corpora, by source name. "corpus" and "holdout" were used while the
# checks were built; holdout2-15 were written later by people who never saw the checks,
# and each was scored once before any check changed for it.
CORPORA = {"corpus": CORPUS} | {
    name: FIXTURES / f"quality_{name}"
    for name in (
        "holdout",
        "holdout2",
        "holdout3",
        "holdout4",
        "holdout5",
        "holdout6",
        "holdout7",
        "holdout8",
        "holdout9",
        "holdout10",
        "holdout11",
        "holdout12",
        "holdout13",
        "holdout14",
        "holdout15",
    )
}
SAMPLE = ROOT / "chalicelib" / "data" / "sample_dataset.json"
RECALL_TARGET = 0.9
CLEAN_FLAG_TARGET = 0.05
AUC_TARGET = 0.95
PER_CHECK_FP_TARGET = 0.05
MS_TARGET = 20.0
EDGE_TYPES = ("refusal_worthy", "off_topic", "ambiguous_request", "hostile_user", "out_of_scope")


@dataclass
class Case:
    source: str  # simulator | corpus | structural
    defect: str  # "clean" or the planted kind
    conversation: Conversation
    turns: list[Turn]
    context: ScoringContext
    duplicate_of: tuple[str, float] | None = None
    report: QualityReport | None = None
    ms: float = 0.0
    extra: dict[str, str] = field(default_factory=dict)


def _turns(raw: Iterable[dict[str, str]]) -> list[Turn]:
    return [
        Turn(turn_number=i + 1, role=t["role"], content=t["content"]) for i, t in enumerate(raw)
    ]  # type: ignore[arg-type]


# --------------------------------------------------------------------------- simulator


def _sim_prompt(spec: dict[str, str], tier: Tier, chunk: dict[str, str] | None) -> str:
    lines = [
        f"{k.capitalize()}: {spec[k]}" for k in ("persona", "emotion", "topic", "intent", "tone")
    ]
    lines.append(f"Tier: {tier.value}")
    if tier == Tier.SCENARIO and chunk:
        lines += [f"Scenario: {spec['scenario']}", f"Source excerpt: {chunk['text']}"]
    elif tier == Tier.EDGE_CASE:
        lines.append(f"Edge case: {spec['edge_case_type']}")
    else:
        lines.append(f"Arc: {spec['arc']}")
    return "\n".join(lines)


def simulator_cases(n_clean: int, per_kind: int, seed: int) -> list[Case]:
    sample = json.loads(SAMPLE.read_text())
    taxonomy = Taxonomy.model_validate(sample["taxonomy"])
    chunks = sample["chunks"]
    business = sample["dataset"].get("business_name") or sample["dataset"]["name"]
    rng = random.Random(seed)
    cases: list[Case] = []

    def one(serial: int, defect: str | None) -> Case | None:
        tier = Tier.SCENARIO if defect == "ungrounded_specifics" else rng.choice(list(Tier))
        spec = {
            k: rng.choice(taxonomy.names(k + "s"))
            for k in ("persona", "emotion", "topic", "intent", "tone")
        }
        chunk = None
        if tier == Tier.SCENARIO:
            matching = [c for c in chunks if c.get("topic") == spec["topic"]] or chunks
            chunk = rng.choice(matching)
            spec["topic"] = chunk.get("topic") or spec["topic"]
            spec["scenario"] = f"a client asks about {chunk['document_title']}"
        spec["edge_case_type"] = rng.choice(EDGE_TYPES)
        spec["arc"] = rng.choice(
            ("anxious -> relieved", "confused -> confident", "frustrated -> calm")
        )
        params = parse_prompt_params(_sim_prompt(spec, tier, chunk))
        text_rng = random.Random(serial)
        _, raw = write_conversation(params, text_rng, rng.choice((8, 10, 12, 14, 16)))
        if defect is not None:
            persona = f"{spec['persona']}: {taxonomy.describe('personas', spec['persona'])}"
            planted = sim_defects.plant_defect(
                raw,
                text_rng,
                topic=spec["topic"],
                has_excerpt=bool(chunk),
                kinds=(defect,),
                persona=persona,
            )
            if planted is None:
                return None
        conversation = Conversation(
            tenant_id="bench",
            dataset_id="sample",
            conversation_id=f"conv_sim_{serial}",
            persona=spec["persona"],
            emotion=spec["emotion"],
            topic=spec["topic"],
            intent=spec["intent"],
            tone=spec["tone"],
            tier=tier,
            arc=spec["arc"] if tier == Tier.TEMPLATE else None,
            scenario=spec.get("scenario") if tier == Tier.SCENARIO else None,
            edge_case_type=spec["edge_case_type"] if tier == Tier.EDGE_CASE else None,
            chunk_id=chunk["chunk_id"] if chunk else None,
        )
        context = ScoringContext(
            taxonomy=taxonomy,
            chunk_text=chunk["text"] if chunk else None,
            business_name=business,
        )
        return Case("simulator", defect or "clean", conversation, _turns(raw), context)

    serial = 0
    for _ in range(n_clean):
        serial += 1
        case = one(serial, None)
        assert case is not None
        cases.append(case)
    for kind in sim_defects.DEFECT_KINDS:
        made = 0
        while made < per_kind:
            serial += 1
            case = one(serial, kind)
            if case is not None:
                cases.append(case)
                made += 1
    return cases


# --------------------------------------------------------------------------- corpus


def corpus_cases(folder: Path = CORPUS, source: str = "corpus") -> list[Case]:
    if not folder.is_dir():
        return []
    businesses = {}
    for path in sorted(folder.glob("business_*.json")):
        doc = json.loads(path.read_text())
        businesses[doc["business"]["slug"]] = doc
    cases = []
    for path in sorted(folder.glob("conv_*.json")):
        doc = json.loads(path.read_text())
        business = businesses[doc["business"]]
        spec = doc["spec"]
        chunk = next(
            (c for c in business.get("chunks", []) if c["chunk_id"] == spec.get("chunk_id")), None
        )
        conversation = Conversation(
            tenant_id="bench",
            dataset_id=doc["business"],
            conversation_id=doc["id"],
            persona=spec["persona"],
            emotion=spec["emotion"],
            topic=spec["topic"],
            intent=spec["intent"],
            tone=spec["tone"],
            tier=Tier(spec["tier"]),
            arc=spec.get("arc"),
            scenario=spec.get("scenario"),
            edge_case_type=spec.get("edge_case_type"),
            chunk_id=spec.get("chunk_id"),
        )
        rules = QualityRules.model_validate(_rules(doc.get("rules"))) if doc.get("rules") else None
        context = ScoringContext(
            taxonomy=_taxonomy(business["taxonomy"]),
            chunk_text=chunk["text"] if chunk else None,
            rules=rules,
            business_name=business["business"]["name"],
        )
        defect = (doc.get("defect") or {}).get("kind") or "clean"
        cases.append(
            Case(
                source,
                defect,
                conversation,
                _turns(doc["turns"]),
                context,
                extra={"path": path.name},
            )
        )
    return cases


def _taxonomy(raw: dict) -> Taxonomy:
    """Entries given as plain names become {name} entries."""
    return Taxonomy.model_validate(
        {
            dim: [e if isinstance(e, dict) else {"name": e} for e in entries]
            for dim, entries in raw.items()
        }
    )


def _rules(raw: dict) -> dict:
    """The corpus writes brand terms as {term, wrong}; the domain model is the same."""
    return {
        "banned_phrases": raw.get("banned_phrases", []),
        "required_disclaimers": raw.get("required_disclaimers", []),
        "brand_terms": raw.get("brand_terms", []),
    }


# --------------------------------------------------------------------------- structural


def structural_cases(seed: int, n: int = 16) -> list[Case]:
    rng = random.Random(seed + 7)
    taxonomy = syn.synthetic_taxonomy()
    context = ScoringContext(taxonomy=taxonomy)
    cases = []
    serial = iter(range(500_000, 600_000))
    clean = [syn.synthetic_conversation(rng, next(serial)) for _ in range(2 * n)]
    for c, t in clean:
        cases.append(Case("structural", "clean", c, t, context))
    for k in range(n):
        src_c, src_t = clean[k]
        copy = syn.light_edit_copy(
            src_t, rng, src_c.topic, ("swaps", "sentence", "reorder", "all")[k % 4]
        )
        conv = src_c.model_copy(update={"conversation_id": f"conv_dup_{k}"})
        cases.append(
            Case(
                "structural",
                "near_duplicate",
                conv,
                copy,
                context,
                extra={"source": src_c.conversation_id},
            )
        )
    makers = {
        "too_few_turns": lambda t: syn.truncate(t, 2 + rng.randrange(2)),
        "broken_alternation": lambda t: syn.break_alternation(
            t,
            rng,
            ("double_user", "starts_assistant", "ends_user", "numbering_gap")[rng.randrange(4)],
        ),
        "empty_turns": lambda t: syn.blank_turn(t, rng, whitespace=bool(rng.randrange(2))),
    }
    for kind, make in makers.items():
        for _ in range(n):
            c, t = syn.synthetic_conversation(rng, next(serial))
            cases.append(Case("structural", kind, c, make(t), context))
    return cases


# --------------------------------------------------------------------------- scoring


def attach_duplicates(cases: list[Case]) -> None:
    """The dataset-wide near-duplicate index, per dataset, as the service keeps it.

    Not for the corpora: each defective conversation there is its clean source with one or
    two turns changed, so the index would flag every one as a near-duplicate of its source
    and hide whether the defect itself was seen."""
    by_dataset: dict[str, list[Case]] = defaultdict(list)
    for case in cases:
        if case.source in CORPORA:
            continue
        by_dataset[f"{case.source}/{case.conversation.dataset_id}"].append(case)
    for group in by_dataset.values():
        rows = [
            (
                c.conversation.conversation_id,
                d.cell_of(c.conversation),
                d.conversation_text(c.turns),
            )
            for c in group
        ]
        found = d.find_dataset_duplicates(rows)
        for case in group:
            case.duplicate_of = found.get(case.conversation.conversation_id)


def score(cases: list[Case]) -> None:
    for case in cases:
        clear_caches()  # each conversation scored as if it were the first
        t0 = time.perf_counter()
        case.report = score_conversation(
            case.conversation, case.turns, duplicate_of=case.duplicate_of, context=case.context
        )
        case.ms = (time.perf_counter() - t0) * 1000


def score_unseen(cases: list[Case]) -> None:
    """Each corpus scored with learned word models trained without it (the rest as
    shipped): what those models do on a business they never saw."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import style_models  # a sibling script, only for this mode

    from chalicelib.quality import style_model

    corpora = {k: v for k, v in style_models.load_corpora().items() if k in CORPORA}
    score([c for c in cases if c.source not in CORPORA])
    for name in CORPORA:
        rest = [c for other, convs in corpora.items() if other != name for c in convs]
        models = {m.name: m for m in style_models.train_models(rest)}
        with style_model.using(models):
            score([c for c in cases if c.source == name])


def auc(clean: list[float], defective: list[float]) -> float | None:
    """P(a clean conversation scores higher than a defective one), ties half."""
    if not clean or not defective:
        return None
    wins = 0.0
    for c in clean:
        for x in defective:
            wins += 1.0 if c > x else 0.5 if c == x else 0.0
    return wins / (len(clean) * len(defective))


def time_indexing(n: int, seed: int) -> None:
    rng = random.Random(seed + 2)
    rows = []
    for i in range(n):
        c, t = syn.synthetic_conversation(rng, i)
        rows.append((c.conversation_id, d.cell_of(c), d.conversation_text(t)))
    t0 = time.perf_counter()
    found = d.find_dataset_duplicates(rows)
    print(
        f"near-duplicate index of {n} conversations: {time.perf_counter() - t0:.2f} s "
        f"({len(found)} flagged)"
    )


DIVERSITY_TARGET_S = 5.0


def time_diversity(n: int, seed: int) -> bool:
    """A dataset-level diversity refresh of ``n`` simulator conversations (the analysis the
    API runs after reading the dataset's turns)."""
    from chalicelib.quality import diversity

    items = [diversity.Item(c.conversation, c.turns) for c in simulator_cases(n, 0, seed + 3)]
    t0 = time.perf_counter()
    report = diversity.analyze(items)
    seconds = time.perf_counter() - t0
    print(
        f"diversity refresh of {n} conversations: {seconds:.2f} s (target <= "
        f"{DIVERSITY_TARGET_S:g} s); score {report['diversity_score']}, repeated user openers "
        f"{len(report['openers']['user'])}, common assistant phrases "
        f"{len(report['phrases']['assistant'])}, near-duplicates {report['near_duplicate_count']}"
    )
    return seconds <= DIVERSITY_TARGET_S


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", type=int, default=300, help="clean simulator conversations")
    parser.add_argument("--per-kind", type=int, default=30, help="simulator defects per kind")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--index-size", type=int, default=10_000)
    parser.add_argument("--no-corpus", action="store_true")
    parser.add_argument("--diversity-size", type=int, default=1000)
    parser.add_argument(
        "--show-misses", action="store_true", help="print every miss and false flag"
    )
    parser.add_argument(
        "--unseen",
        action="store_true",
        help="score each corpus with learned models trained without it",
    )
    args = parser.parse_args()

    cases = simulator_cases(args.clean, args.per_kind, args.seed)
    if not args.no_corpus:
        for name, folder in CORPORA.items():
            cases += corpus_cases(folder, name)
    cases += structural_cases(args.seed)
    attach_duplicates(cases)
    if args.unseen:
        score_unseen(cases)
    else:
        score(cases)
    ok = True

    print(f"{len(cases)} conversations scored")
    print(f"\n{'source / defect':<44}{'n':>5}{'flagged':>9}{'recall':>8}{'mean':>7}")
    print("-" * 73)
    groups: dict[tuple[str, str], list[Case]] = defaultdict(list)
    for case in cases:
        groups[(case.source, case.defect)].append(case)
    for (source, defect), group in sorted(
        groups.items(), key=lambda kv: (kv[0][0], kv[0][1] == "clean", kv[0][1])
    ):
        flagged = sum(c.report.flagged for c in group if c.report)
        rate = flagged / len(group)
        mean = statistics.fmean(c.report.score for c in group if c.report)
        label = f"{source} / {defect}" + (
            " (flagged = false positive)" if defect == "clean" else ""
        )
        print(f"{label:<44}{len(group):>5}{flagged:>9}{rate:>8.3f}{mean:>7.2f}")
    defective = [c for c in cases if c.defect != "clean"]
    clean = [c for c in cases if c.defect == "clean"]
    recall = sum(c.report.flagged for c in defective if c.report) / len(defective)
    clean_flagged = sum(c.report.flagged for c in clean if c.report) / len(clean)
    print("-" * 73)
    print(f"all defective: recall {recall:.3f} (target >= {RECALL_TARGET})")
    print(f"all clean: flagged {clean_flagged:.3f} (target <= {CLEAN_FLAG_TARGET})")
    ok &= recall >= RECALL_TARGET and clean_flagged <= CLEAN_FLAG_TARGET

    print(f"\n{'AUC of the score (clean above defective)':<44}{'clean':>7}{'defect':>8}{'AUC':>8}")
    for source in ("simulator", *CORPORA, "structural", "all"):
        cs = [c.report.score for c in clean if c.report and (source == "all" or c.source == source)]
        ds = [
            c.report.score
            for c in defective
            if c.report and (source == "all" or c.source == source)
        ]
        value = auc(cs, ds)
        if value is None:
            continue
        print(f"{source:<44}{len(cs):>7}{len(ds):>8}{value:>8.3f}")
        if source == "all":
            ok &= value >= AUC_TARGET

    print("\nper check: flags raised on clean conversations (false positives)")
    sim_clean = [c for c in clean if c.source == "simulator"]
    flags: Counter[str] = Counter()
    flags_sim: Counter[str] = Counter()
    names: set[str] = set()
    for case in clean:
        assert case.report is not None
        for check in case.report.checks:
            names.add(check.name)
            if not check.passed and check.severity:
                flags[check.name] += 1
                if case.source == "simulator":
                    flags_sim[check.name] += 1
    print(f"{'check':<24}{'all clean':>12}{'sample (simulator)':>20}")
    for name in sorted(names):
        share = flags[name] / len(clean)
        share_sim = flags_sim[name] / len(sim_clean) if sim_clean else 0.0
        print(f"{name:<24}{share:>12.3f}{share_sim:>20.3f}")
        ok &= share_sim <= PER_CHECK_FP_TARGET
    times = sorted(c.ms for c in cases)
    p50 = statistics.median(times)
    p95 = times[int(0.95 * (len(times) - 1))]
    print(
        f"\nscoring time per conversation: p50 {p50:.2f} ms, p95 {p95:.2f} ms, max {times[-1]:.2f} ms (target <= {MS_TARGET} ms)"
    )
    ok &= p95 <= MS_TARGET
    if args.show_misses:
        print("\nmisses (defective, not flagged) and false flags (clean, flagged):")
        for case in cases:
            assert case.report is not None
            miss = case.defect != "clean" and not case.report.flagged
            false_flag = case.defect == "clean" and case.report.flagged
            if miss or false_flag:
                what = "MISS" if miss else "FALSE FLAG"
                where = case.extra.get("path") or case.conversation.conversation_id
                print(
                    f"  {what} {case.source}/{case.defect} {where} score {case.report.score}: {case.report.reasons[:2] or [c.detail for c in case.report.checks if c.suspicion][:2]}"
                )
    if args.index_size:
        time_indexing(args.index_size, args.seed)
    if args.diversity_size:
        ok &= time_diversity(args.diversity_size, args.seed)
    print(f"\ntargets: {'MET' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
