import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { ApiError } from "../api";

export type ToastKind = "success" | "error" | "info" | "warning";

interface Toast {
  id: number;
  kind: ToastKind;
  message: string;
  detail?: string[];
  /** An Undo button (and the `u` key while this is the newest undoable toast). */
  undo?: () => void | Promise<void>;
}

/** At most this many toasts at once: older ones give way. */
export const MAX_TOASTS = 3;
export const UNDO_MS = 10000;

function typingIn(el: EventTarget | null): boolean {
  if (!(el instanceof HTMLElement)) return false;
  if (el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable) return true;
  return el.tagName === "INPUT" && !["checkbox", "radio", "button", "submit", "reset"].includes((el as HTMLInputElement).type);
}

interface ToastApi {
  success: (message: string, detail?: string[]) => void;
  info: (message: string, detail?: string[]) => void;
  warning: (message: string, detail?: string[]) => void;
  /** Shows an API error's `error.message` (and row errors), or any other error's text. */
  error: (err: unknown, prefix?: string) => void;
  /** A success with an Undo button; `u` undoes the newest one. */
  undoable: (message: string, undo: () => void | Promise<void>) => void;
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
    (kind: ToastKind, message: string, detail?: string[], undo?: Toast["undo"]) => {
      const id = next.current++;
      setToasts((ts) => [...ts.slice(-(MAX_TOASTS - 1)), { id, kind, message, detail, undo }]);
      const ms = undo ? UNDO_MS : kind === "error" || kind === "warning" ? 12000 : 6000;
      window.setTimeout(() => dismiss(id), ms);
    },
    [dismiss],
  );

  const runUndo = useCallback(
    (t: Toast) => {
      dismiss(t.id);
      void t.undo?.();
    },
    [dismiss],
  );

  // `u` undoes the newest undoable decision, wherever focus is (but not while typing
  // or with a dialog open).
  // The toasts' height, as --toasts-height: the full-screen conversation on a phone ends
  // above them, so they never cover its text.
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    const root = document.documentElement;
    if (!el || typeof ResizeObserver === "undefined") return;
    const ro = new ResizeObserver(() => root.style.setProperty("--toasts-height", `${el.childElementCount ? el.offsetHeight : 0}px`));
    ro.observe(el, { box: "border-box" }); // its padding changes when a conversation opens
    return () => ro.disconnect();
  }, []);

  const latest = useRef<Toast | undefined>(undefined);
  latest.current = [...toasts].reverse().find((t) => t.undo);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== "u" || e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || typingIn(e.target)) return;
      if (document.querySelector(".backdrop")) return;
      const t = latest.current;
      if (!t) return;
      e.preventDefault();
      runUndo(t);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [runUndo]);

  const api = useMemo<ToastApi>(
    () => ({
      success: (m, d) => push("success", m, d),
      info: (m, d) => push("info", m, d),
      warning: (m, d) => push("warning", m, d),
      undoable: (m, undo) => push("success", m, undefined, undo),
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
      <div className="toasts" ref={box} aria-live="polite" role="status" aria-label="Notifications">
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
            {t.undo && (
              <button type="button" className="btn btn-small toast-undo" onClick={() => runUndo(t)} data-testid="toast-undo" title="Undo (u)">
                Undo
              </button>
            )}
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
