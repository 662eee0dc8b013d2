import { useEffect, useState } from "react";
import { api, type ConversationStatus } from "./api";

/** How many of a dataset's conversations are in each stage, for the buttons and empty
 * states that depend on it (Generate all, Review, Export approved). */
export interface StatusCounts {
  /** Every conversation in the dataset (not in the trash). */
  total: number;
  /** Planned or failed: what Generate all would still write. */
  remaining: number;
  /** Written and waiting for a review decision. */
  toReview: number;
  approved: number;
}

const GROUPS: Record<Exclude<keyof StatusCounts, "total">, ConversationStatus[]> = {
  remaining: ["not_generated", "failed"],
  toReview: ["generated"],
  approved: ["approved"],
};

/** Counted with the list endpoint's `total` (smallest page), after the table has loaded
 * so that the first render never waits on it; again whenever `tick` changes. */
export function useStatusCounts(datasetId: string | null, opts: { enabled: boolean; tick: number }): StatusCounts | null {
  const [counts, setCounts] = useState<StatusCounts | null>(null);
  useEffect(() => setCounts(null), [datasetId]);
  useEffect(() => {
    if (!datasetId || !opts.enabled) return;
    const ctrl = new AbortController();
    const count = (status: ConversationStatus[] | undefined) =>
      api
        .listConversations({ dataset_id: datasetId, ...(status ? { status } : {}), page_size: 25, page: 1 }, ctrl.signal)
        .then((p) => p.total);
    // After the table has painted (a frame, then a task): the first render never
    // shares the server with these.
    let timer = 0;
    const frame = requestAnimationFrame(() => {
      timer = window.setTimeout(() => {
        Promise.all([count(undefined), count(GROUPS.remaining), count(GROUPS.toReview), count(GROUPS.approved)])
          .then(([total, remaining, toReview, approved]) => setCounts({ total, remaining, toReview, approved }))
          .catch(() => {
            /* the buttons stay as they were: an error here is not worth a toast */
          });
      }, 0);
    });
    return () => {
      cancelAnimationFrame(frame);
      window.clearTimeout(timer);
      ctrl.abort();
    };
  }, [datasetId, opts.enabled, opts.tick]);
  return counts;
}
