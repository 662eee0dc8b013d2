/**
 * Generation job tracking: remembers the running job id (localStorage, per dataset),
 * rediscovers it from `GET /api/jobs?dataset_id=&active=true` after a reload (or takes
 * it from a notification link's `job=`), and polls
 * `GET /api/jobs/{id}` every few seconds while it runs.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { api, isJobActive, type Job } from "./api";
import { decodeJobId, setSearch } from "./urlState";

export const POLL_MS = 2500;
const KEY = "brightrun.job.";

export function rememberJob(datasetId: string, jobId: string | null): void {
  try {
    if (jobId) localStorage.setItem(KEY + datasetId, jobId);
    else localStorage.removeItem(KEY + datasetId);
  } catch {
    /* storage unavailable: the server-side lookup still finds it */
  }
}

export function rememberedJob(datasetId: string): string | null {
  try {
    return localStorage.getItem(KEY + datasetId);
  } catch {
    return null;
  }
}

export interface JobTracker {
  job: Job | null;
  /** Start following a job (just started by this user). */
  track: (jobId: string) => void;
  /** Hide a finished job's summary. */
  dismiss: () => void;
  refresh: () => Promise<void>;
  setJob: (job: Job) => void;
  error: string | null;
}

export function useJobTracker(datasetId: string | null): JobTracker {
  const [jobId, setJobId] = useState<string | null>(null);
  const [job, setJobState] = useState<Job | null>(null);
  const [error, setError] = useState<string | null>(null);
  const timer = useRef<number | null>(null);

  // Find the dataset's running job: remembered id first, then the server's list.
  useEffect(() => {
    setJobId(null);
    setJobState(null);
    setError(null);
    if (!datasetId) return;
    let cancelled = false;
    (async () => {
      // A notification's "Review them" link names the job: show it (then drop it from
      // the URL so that dismissing it sticks across reloads).
      const linked = decodeJobId(window.location.search);
      if (linked) {
        const dropParam = () => {
          const sp = new URLSearchParams(window.location.search);
          sp.delete("job");
          setSearch(sp.toString(), true);
        };
        try {
          const j = await api.getJob(linked);
          if (cancelled) return;
          dropParam();
          if (!j.dataset_id || j.dataset_id === datasetId) {
            setJobId(linked);
            setJobState(j);
            rememberJob(datasetId, isJobActive(j) ? linked : null);
            return;
          }
        } catch {
          if (cancelled) return;
          dropParam(); // unknown or foreign job: fall back to the usual lookup
        }
      }
      const remembered = rememberedJob(datasetId);
      if (remembered) {
        try {
          const j = await api.getJob(remembered);
          if (cancelled) return;
          setJobId(remembered);
          setJobState(j);
          if (!isJobActive(j)) rememberJob(datasetId, null);
          return;
        } catch {
          rememberJob(datasetId, null);
        }
      }
      try {
        const list = await api.listActiveJobs(datasetId);
        if (cancelled) return;
        const active = list.items.find(isJobActive) ?? list.items[0];
        if (active) {
          setJobId(active.job_id);
          setJobState(active);
          rememberJob(datasetId, active.job_id);
        }
      } catch {
        /* no job list: nothing to resume */
      }
    })();
    return () => {
      cancelled = true;
    };
  }, [datasetId]);

  const refresh = useCallback(async () => {
    if (!jobId) return;
    try {
      const j = await api.getJob(jobId);
      setJobState(j);
      setError(null);
      if (!isJobActive(j) && datasetId) rememberJob(datasetId, null);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  }, [jobId, datasetId]);

  // Poll while active.
  useEffect(() => {
    if (!jobId || (job && !isJobActive(job))) return;
    const tick = async () => {
      await refresh();
      timer.current = window.setTimeout(tick, POLL_MS);
    };
    timer.current = window.setTimeout(tick, job ? POLL_MS : 0);
    return () => {
      if (timer.current !== null) window.clearTimeout(timer.current);
    };
  }, [jobId, job?.status, refresh]);

  const track = useCallback(
    (id: string) => {
      if (datasetId) rememberJob(datasetId, id);
      setJobState(null);
      setJobId(id);
    },
    [datasetId],
  );

  const dismiss = useCallback(() => {
    if (datasetId) rememberJob(datasetId, null);
    setJobId(null);
    setJobState(null);
  }, [datasetId]);

  const setJob = useCallback((j: Job) => setJobState(j), []);

  return useMemo(() => ({ job, track, dismiss, refresh, setJob, error }), [job, track, dismiss, refresh, setJob, error]);
}
