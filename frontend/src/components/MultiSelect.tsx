import { useEffect, useRef, useState } from "react";

interface Option {
  value: string;
  label: string;
  hint?: string;
}

interface Props {
  label: string;
  options: Option[];
  selected: string[];
  onChange: (values: string[]) => void;
  testId: string;
  emptyText?: string;
}

/** A dropdown of checkboxes. Test ids: `{testId}` (wrapper), `{testId}-button`, `{testId}-option-{value}`. */
export function MultiSelect({ label, options, selected, onChange, testId, emptyText }: Props) {
  const [open, setOpen] = useState(false);
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open) return;
    const onDoc = (e: MouseEvent) => {
      if (ref.current && !ref.current.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener("mousedown", onDoc);
    return () => document.removeEventListener("mousedown", onDoc);
  }, [open]);
  const toggle = (value: string) =>
    onChange(selected.includes(value) ? selected.filter((v) => v !== value) : [...selected, value]);
  return (
    <div
      className="multiselect"
      ref={ref}
      data-testid={testId}
      onKeyDown={(e) => {
        if (e.key === "Escape" && open) {
          e.stopPropagation();
          setOpen(false);
        }
      }}
    >
      <button
        type="button"
        className={`btn btn-small multiselect-btn${selected.length ? " has-value" : ""}`}
        aria-haspopup="listbox"
        aria-expanded={open}
        onClick={() => setOpen((o) => !o)}
        data-testid={`${testId}-button`}
      >
        {label}
        {selected.length ? ` (${selected.length})` : ""} ▾
      </button>
      {open && (
        <div className="multiselect-menu" role="listbox" aria-multiselectable="true" aria-label={label}>
          {options.length === 0 && <div className="muted small">{emptyText ?? "No options yet."}</div>}
          {options.map((o) => (
            <label key={o.value} className="multiselect-option" title={o.hint}>
              <input
                type="checkbox"
                checked={selected.includes(o.value)}
                onChange={() => toggle(o.value)}
                data-testid={`${testId}-option-${o.value}`}
              />
              <span>{o.label}</span>
            </label>
          ))}
        </div>
      )}
    </div>
  );
}
