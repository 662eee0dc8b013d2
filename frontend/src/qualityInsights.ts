/**
 * Dataset-level quality figures for the dashboard (score histogram, diversity,
 * calibration), loaded next to the table but never in its way:
 *
 * - nothing is asked before the table's first page has arrived (`enabled`), so the
 *   first render is not slowed down by them;
 * - stats and calibration follow `tick` (the table's reload counter: generation
 *   progress, reviews), at most once per REFRESH_MS, so a running job does not turn
 *   into a request per finished conversation;
 * - diversity is the heavy one: asked once the dataset has scored conversations and
 *   again only when `diversityTick` moves (a job finished, the view was opened). The
 *   server caches it until the dataset's conversations change.
 *
 * A failed call keeps the last figures and reports its message; it never toasts (these
 * are a summary, the table stays usable).
 */
import { useEffect, useRef, useState } from "react";
import { api, type Calibration, type Diversity, type QualityStats } from "./api";
import { errorMessage } from "./components/Toasts";

export const REFRESH_MS = 2500;

export interface QualityInsights {
  stats: QualityStats | null;
  diversity: Diversity | null;
  calibration: Calibration | null;
  statsError: string | null;
  diversityError: string | null;
  calibrationError: string | null;
  diversityLoading: boolean;
}

const EMPTY: QualityInsights = {
  stats: null,
  diversity: null,
  calibration: null,
  statsError: null,
  diversityError: null,
  calibrationError: null,
  diversityLoading: false,
};

function aborted(e: unknown): boolean {
  return e instanceof DOMException && e.name === "AbortError";
}

export function useQualityInsights(
  datasetId: string | null,
  { enabled, tick, diversityTick }: { enabled: boolean; tick: number; diversityTick: number },
): QualityInsights {
  const [data, setData] = useState<QualityInsights>(EMPTY);
  const lastFetch = useRef(0);
  // One controller per dataset: switching datasets (or leaving) cancels what is in
  // flight; a new tick does not (a refresh must not starve while a job runs).
  const [signal, setSignal] = useState<AbortSignal | null>(null);

  useEffect(() => {
    setData(EMPTY);
    lastFetch.current = 0;
    const ctrl = new AbortController();
    setSignal(ctrl.signal);
    return () => ctrl.abort();
  }, [datasetId]);

  // Stats and calibration: trailing refresh, at most once per REFRESH_MS.
  useEffect(() => {
    if (!datasetId || !enabled || !signal || signal.aborted) return;
    const wait = Math.max(0, lastFetch.current + REFRESH_MS - Date.now());
    const timer = window.setTimeout(() => {
      lastFetch.current = Date.now();
      api
        .qualityStats(datasetId, signal)
        .then((stats) => setData((d) => ({ ...d, stats, statsError: null })))
        .catch((e: unknown) => !aborted(e) && setData((d) => ({ ...d, statsError: errorMessage(e) })));
      api
        .calibration(datasetId, signal)
        .then((calibration) => setData((d) => ({ ...d, calibration, calibrationError: null })))
        .catch((e: unknown) => !aborted(e) && setData((d) => ({ ...d, calibrationError: errorMessage(e) })));
    }, wait);
    return () => window.clearTimeout(timer);
  }, [datasetId, enabled, tick, signal]);

  const hasScored = (data.stats?.scored ?? 0) > 0;
  useEffect(() => {
    if (!datasetId || !enabled || !hasScored || !signal || signal.aborted) return;
    setData((d) => ({ ...d, diversityLoading: true }));
    api
      .diversity(datasetId, signal)
      .then((diversity) => setData((d) => ({ ...d, diversity, diversityError: null, diversityLoading: false })))
      .catch((e: unknown) => {
        if (!aborted(e)) setData((d) => ({ ...d, diversityError: errorMessage(e), diversityLoading: false }));
      });
  }, [datasetId, enabled, hasScored, diversityTick, signal]);

  return data;
}
