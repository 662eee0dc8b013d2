import { createContext, useCallback, useContext, useMemo, useRef, useState, type ReactNode } from "react";
import { ApiError } from "../api";

export type ToastKind = "success" | "error" | "info" | "warning";

interface Toast {
  id: number;
  kind: ToastKind;
  message: string;
  detail?: string[];
}

interface ToastApi {
  success: (message: string, detail?: string[]) => void;
  info: (message: string, detail?: string[]) => void;
  warning: (message: string, detail?: string[]) => void;
  /** Shows an API error's `error.message` (and row errors), or any other error's text. */
  error: (err: unknown, prefix?: string) => void;
}

const ToastContext = createContext<ToastApi | null>(null);

export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const next = useRef(1);

  const dismiss = useCallback((id: number) => setToasts((ts) => ts.filter((t) => t.id !== id)), []);

  const push = useCallback(
    (kind: ToastKind, message: string, detail?: string[]) => {
      const id = next.current++;
      setToasts((ts) => [...ts.slice(-4), { id, kind, message, detail }]);
      const ms = kind === "error" || kind === "warning" ? 12000 : 6000;
      window.setTimeout(() => dismiss(id), ms);
    },
    [dismiss],
  );

  const api = useMemo<ToastApi>(
    () => ({
      success: (m, d) => push("success", m, d),
      info: (m, d) => push("info", m, d),
      warning: (m, d) => push("warning", m, d),
      error: (err, prefix) => {
        if (err instanceof DOMException && err.name === "AbortError") return;
        const msg = errorMessage(err);
        const rows = err instanceof ApiError ? err.rowErrors() : [];
        push("error", prefix ? `${prefix}: ${msg}` : msg, rows.length ? rows.slice(0, 8) : undefined);
      },
    }),
    [push],
  );

  return (
    <ToastContext.Provider value={api}>
      {children}
      <div className="toasts" aria-live="polite" role="status">
        {toasts.map((t) => (
          <div key={t.id} className={`toast toast-${t.kind}`} data-testid="toast" data-kind={t.kind}>
            <div className="toast-body">
              <span data-testid="toast-message">{t.message}</span>
              {t.detail && (
                <ul className="toast-detail">
                  {t.detail.map((d, i) => (
                    <li key={i}>{d}</li>
                  ))}
                </ul>
              )}
            </div>
            <button type="button" className="toast-close" aria-label="Dismiss" onClick={() => dismiss(t.id)}>
              ×
            </button>
          </div>
        ))}
      </div>
    </ToastContext.Provider>
  );
}

export function useToast(): ToastApi {
  const ctx = useContext(ToastContext);
  if (!ctx) throw new Error("useToast outside ToastProvider");
  return ctx;
}
