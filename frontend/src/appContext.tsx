import { createContext, useContext } from "react";
import type { Dataset, Health } from "./api";
import type { JobTracker } from "./jobs";

export interface AppState {
  health: Health | null;
  datasets: Dataset[] | null;
  datasetId: string | null;
  /** Full record of the selected dataset (taxonomy etc.), null while loading. */
  dataset: Dataset | null;
  selectDataset: (id: string | null) => void;
  refreshDatasets: () => Promise<Dataset[]>;
  refreshDataset: () => Promise<void>;
  jobs: JobTracker;
}

export const AppContext = createContext<AppState | null>(null);

export function useApp(): AppState {
  const ctx = useContext(AppContext);
  if (!ctx) throw new Error("useApp outside AppContext");
  return ctx;
}
