"""Format writers alone: CPU microseconds per conversation written, per format.

    .venv/bin/python bench/export_writers.py [--n 2000] [--turns 12] [--repeat 3]

No AWS and no reads: each writer turns ``--n`` in-memory conversations (every field set,
``--turns`` turns of ~250 characters, a system prompt) into its file, including the
per-record validation, and the best of ``--repeat`` runs is printed. This is the part of
an export's CPU that belongs to the format itself (bench/export.py measures the whole
export end to end).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEXT = "I have been looking at my statement and the numbers went down again this month. "


def main(argv: list[str] | None = None) -> int:
    from chalicelib.domain.models import (
        Conversation,
        ConversationStatus,
        ExportFormat,
        QualityCheck,
        QualityReport,
        StoredTurn,
        Tier,
    )
    from chalicelib.export.formats import ExportItem, ExportOptions, get_writer

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--turns", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    now = datetime(2026, 11, 26, tzinfo=UTC)
    turns = [
        StoredTurn(i + 1, "user" if i % 2 == 0 else "assistant", TEXT * 3)
        for i in range(args.turns)
    ]
    items = [
        ExportItem(
            Conversation(
                tenant_id="tenant-bench",
                dataset_id="ds_bench",
                conversation_id=f"conv_{i:06d}",
                persona="Pre-Retiree",
                emotion="Fear",
                topic="Fees",
                intent="Understand",
                tone="Warm",
                tier=list(Tier)[i % 3],
                chunk_id=f"chunk-{i // 3}",
                title=f"Conversation {i}",
                status=ConversationStatus.APPROVED,
                quality_score=8.5,
                quality=QualityReport(
                    score=8.5, checks=[QualityCheck(name="turns", passed=True, score=1, weight=1)]
                ),
                turn_count=args.turns,
                actual_cost_usd=0.01,
                model="claude-sonnet-4-6",
                approved_at=now,
                created_at=now,
                updated_at=now,
            ),
            turns,
        )
        for i in range(args.n)
    ]
    options = ExportOptions(system_prompt="You are the client advisor assistant.", export_date=now)
    print(f"{args.n} conversations x {args.turns} turns, best of {args.repeat} (CPU time)")
    print(f"{'format':<12}{'us/conv':>9}{'MiB':>7}")
    for fmt in ExportFormat:
        writer = get_writer(fmt)
        best, size = float("inf"), 0
        for _ in range(args.repeat):
            t0 = time.process_time()
            size = sum(len(chunk) for chunk in writer.write(items, options))
            best = min(best, time.process_time() - t0)
        print(f"{fmt.value:<12}{best / args.n * 1e6:>9.1f}{size / 2**20:>7.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
