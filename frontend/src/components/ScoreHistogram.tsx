import { plural } from "../format";
import { isFlaggedBucket, SCORE_BUCKETS } from "../quality";

interface Props {
  /** Keys "1".."10": conversations per whole-number score bucket. */
  histogram: Record<string, number>;
  /** The bucket the table is filtered to, if any. */
  active: number | null;
  /** A bar was clicked: filter the table to it (null: clicked the active bar, clear). */
  onPick: (bucket: number | null) => void;
}

const BAR_MAX_PX = 44;

/** Conversations per score bucket; buckets below the flag line are red. Each bar is a
 * button that filters the table to its score range. */
export function ScoreHistogram({ histogram, active, onPick }: Props) {
  const counts = SCORE_BUCKETS.map((b) => Math.max(0, Number(histogram[String(b)] ?? 0)));
  const max = Math.max(1, ...counts);
  return (
    <div className="histogram" role="group" aria-label="Conversations per quality score" data-testid="quality-histogram">
      {SCORE_BUCKETS.map((bucket, i) => {
        const n = counts[i] ?? 0;
        const flagged = isFlaggedBucket(bucket);
        const range = bucket === 10 ? "score 10" : `scores ${bucket} to ${bucket}.9`;
        const height = n === 0 ? 0 : Math.max(3, Math.round((n / max) * BAR_MAX_PX));
        return (
          <button
            key={bucket}
            type="button"
            className={`histogram-bar${flagged ? " flagged" : ""}${active === bucket ? " active" : ""}`}
            aria-pressed={active === bucket}
            title={`${range[0]!.toUpperCase()}${range.slice(1)}: ${plural(n, "conversation")}${flagged ? " (flagged: below 6)" : ""}`}
            onClick={() => onPick(active === bucket ? null : bucket)}
            data-testid={`histogram-bar-${bucket}`}
            data-count={n}
            data-flagged={flagged ? "true" : "false"}
          >
            {/* The name is the visible text (count, score) read with the words around it. */}
            <span className="sr-only">{range}: </span>
            <span className="histogram-count">{n > 0 ? n : ""}</span>
            <span className="sr-only">
              {n > 0 ? "" : "no"} conversation{n === 1 ? "" : "s"}
              {flagged ? " (flagged)" : ""}. {active === bucket ? "Click to show all scores." : "Click to show them in the table."} Score{" "}
            </span>
            <span className="histogram-fill" style={{ height: `${height}px` }} aria-hidden="true" />
            <span className="histogram-label">{bucket}</span>
          </button>
        );
      })}
    </div>
  );
}
