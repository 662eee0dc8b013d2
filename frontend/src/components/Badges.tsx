import type { ConversationStatus } from "../api";
import { STATUS_LABEL } from "../format";
import { QUALITY_BAND_LABEL, qualityBand } from "../quality";

export function StatusBadge({
  status,
  onClick,
  testId,
}: {
  status: ConversationStatus;
  onClick?: () => void;
  testId?: string;
}) {
  const label = STATUS_LABEL[status] ?? status;
  if (status === "failed" && onClick) {
    return (
      <button
        type="button"
        className={`badge status-${status} badge-clickable`}
        title="Generation failed: click to see why and retry"
        data-testid={testId}
        data-status={status}
        onClick={(e) => {
          e.stopPropagation();
          onClick();
        }}
      >
        {label} · why?
      </button>
    );
  }
  return (
    <span className={`badge status-${status}`} data-testid={testId} data-status={status}>
      {label}
    </span>
  );
}

export function QualityBadge({ score, testId }: { score: number | null | undefined; testId?: string }) {
  const band = qualityBand(score);
  return (
    <span className={`quality quality-${band}`} title={QUALITY_BAND_LABEL[band]} data-testid={testId} data-band={band}>
      {score === null || score === undefined ? "–" : score.toFixed(1)}
    </span>
  );
}
