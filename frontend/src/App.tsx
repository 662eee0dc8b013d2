import { useCallback, useEffect, useMemo, useState, type MouseEvent } from "react";
import { api, isJobActive, jobPercent, type Dataset, type Health } from "./api";
import { AppContext, type AppState } from "./appContext";
import { UserBox } from "./auth";
import { Help } from "./components/Help";
import { useToast } from "./components/Toasts";
import { HELP } from "./help";
import { useJobTracker } from "./jobs";
import { Dashboard } from "./pages/Dashboard";
import { CoveragePage } from "./pages/CoveragePage";
import { DatasetsPage } from "./pages/Datasets";
import { ExportsPage } from "./pages/Exports";
import { NotificationsPage } from "./pages/Notifications";
import { TemplatesPage } from "./pages/Templates";
import { decodeDatasetId, decodeView, useSearch, viewSearch, type View } from "./urlState";

const NAV: { view: View; label: string }[] = [
  { view: "dashboard", label: "Dashboard" },
  { view: "coverage", label: "Coverage" },
  { view: "datasets", label: "Datasets" },
  { view: "templates", label: "Templates" },
  { view: "exports", label: "Exports" },
  { view: "notifications", label: "Notifications" },
];

const DATASET_KEY = "brightrun.dataset";

function storedDataset(): string | null {
  try {
    return localStorage.getItem(DATASET_KEY);
  } catch {
    return null;
  }
}

export function App() {
  const toast = useToast();
  const [search, setSearch] = useSearch();
  const view = decodeView(search);
  const urlDatasetId = decodeDatasetId(search);

  const [health, setHealth] = useState<Health | null>(null);
  const [healthError, setHealthError] = useState<string | null>(null);
  const [datasets, setDatasets] = useState<Dataset[] | null>(null);
  const [dataset, setDataset] = useState<Dataset | null>(null);

  useEffect(() => {
    api
      .health()
      .then((h) => setHealth(h))
      .catch((e: unknown) => setHealthError(e instanceof Error ? e.message : String(e)));
  }, []);

  const refreshDatasets = useCallback(async () => {
    try {
      const list = await api.listDatasets();
      setDatasets(list.items);
      return list.items;
    } catch (e) {
      toast.error(e, "Could not load datasets");
      setDatasets((d) => d ?? []);
      return [];
    }
  }, [toast]);

  useEffect(() => {
    void refreshDatasets();
  }, [refreshDatasets]);

  // Pick a dataset when the URL has none: the last one used, else the first.
  useEffect(() => {
    if (urlDatasetId || !datasets || datasets.length === 0) return;
    const stored = storedDataset();
    const pick = datasets.find((d) => d.dataset_id === stored) ?? datasets[0];
    if (pick) {
      const sp = new URLSearchParams(window.location.search);
      sp.set("dataset_id", pick.dataset_id);
      setSearch(sp.toString(), true);
    }
  }, [urlDatasetId, datasets, setSearch]);

  const datasetId = urlDatasetId;

  const refreshDataset = useCallback(async () => {
    if (!datasetId) {
      setDataset(null);
      return;
    }
    try {
      setDataset(await api.getDataset(datasetId));
    } catch (e) {
      setDataset(null);
      toast.error(e, "Could not load the dataset");
    }
  }, [datasetId, toast]);

  useEffect(() => {
    setDataset(null);
    if (datasetId) {
      try {
        localStorage.setItem(DATASET_KEY, datasetId);
      } catch {
        /* ignore */
      }
    }
    void refreshDataset();
  }, [datasetId, refreshDataset]);

  const selectDataset = useCallback(
    (id: string | null) => {
      // A new dataset starts with a clean dashboard (filters belong to a taxonomy).
      setSearch(viewSearch(view, id));
    },
    [setSearch, view],
  );

  const jobs = useJobTracker(datasetId);

  const state: AppState = useMemo(
    () => ({ health, datasets, datasetId, dataset, selectDataset, refreshDatasets, refreshDataset, jobs }),
    [health, datasets, datasetId, dataset, selectDataset, refreshDatasets, refreshDataset, jobs],
  );

  const go = (e: MouseEvent<HTMLAnchorElement>, target: View) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    setSearch(viewSearch(target, datasetId));
  };

  const job = jobs.job;

  return (
    <AppContext.Provider value={state}>
      <div className="app">
        <header className="app-header">
          <div className="brand">
            <h1>
              <span className="brand-full">Bright Run Conversation Studio</span>
              <span className="brand-short">
                Bright Run
              </span>
            </h1>
            {health?.llm === "simulator" && (
              <span className="sim-badge" data-testid="simulator-badge" role="note" title={health.llm_note}>
                <span className="brand-full">Simulator mode: conversations are written by an offline Messages-API simulator, not Claude</span>
                <span className="brand-short">Simulator</span>
              </span>
            )}
            {healthError && (
              <span className="sim-badge sim-badge-error" data-testid="health-error" role="alert">
                Cannot reach the service: {healthError}
              </span>
            )}
          </div>
          <div className="header-row">
            <nav className="nav" aria-label="Main">
              {NAV.map((n) => (
                <a
                  key={n.view}
                  href={`?${viewSearch(n.view, datasetId)}`}
                  className={view === n.view ? "active" : ""}
                  aria-current={view === n.view ? "page" : undefined}
                  onClick={(e) => go(e, n.view)}
                  data-testid={`nav-${n.view}`}
                >
                  {n.label}
                </a>
              ))}
            </nav>
            <div className="dataset-picker">
              <label htmlFor="dataset-picker">Dataset</label>
              <Help text={HELP.dataset} />
              <select
                id="dataset-picker"
                data-testid="dataset-picker"
                value={datasetId ?? ""}
                onChange={(e) => selectDataset(e.target.value || null)}
                disabled={!datasets || datasets.length === 0}
              >
                {!datasets && <option value="">Loading…</option>}
                {datasets && datasets.length === 0 && <option value="">No datasets yet</option>}
                {datasets && datasetId && !datasets.some((d) => d.dataset_id === datasetId) && (
                  <option value={datasetId}>{dataset?.name ?? datasetId}</option>
                )}
                {datasets?.map((d) => (
                  <option key={d.dataset_id} value={d.dataset_id}>
                    {d.name}
                  </option>
                ))}
              </select>
            </div>
            {job && isJobActive(job) && view !== "dashboard" && (
              <a
                className="job-pill"
                href={`?${viewSearch("dashboard", datasetId)}`}
                onClick={(e) => go(e, "dashboard")}
                data-testid="job-pill"
              >
                {job.status === "paused" ? "Generation paused" : "Generating"} · {Math.round(jobPercent(job))}%
              </a>
            )}
            <UserBox />
          </div>
        </header>
        <main className="app-main">
          {view === "dashboard" && <Dashboard />}
          {view === "coverage" && <CoveragePage />}
          {view === "datasets" && <DatasetsPage />}
          {view === "templates" && <TemplatesPage />}
          {view === "exports" && <ExportsPage />}
          {view === "notifications" && <NotificationsPage />}
        </main>
      </div>
    </AppContext.Provider>
  );
}
