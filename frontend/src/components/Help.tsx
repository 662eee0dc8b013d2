import { useId, useState } from "react";

/** A small "?" marker with an explanation on hover, focus or click. */
export function Help({ text, testId }: { text: string; testId?: string }) {
  const [open, setOpen] = useState(false);
  const id = useId();
  return (
    <span className="help-wrap">
      <button
        type="button"
        className="help"
        aria-label={`Help: ${text}`}
        aria-describedby={open ? id : undefined}
        title={text}
        data-testid={testId}
        onClick={(e) => {
          e.preventDefault();
          e.stopPropagation();
          setOpen((o) => !o);
        }}
        onBlur={() => setOpen(false)}
        onMouseEnter={() => setOpen(true)}
        onMouseLeave={() => setOpen(false)}
      >
        ?
      </button>
      {open && (
        <span role="tooltip" id={id} className="tooltip">
          {text}
        </span>
      )}
    </span>
  );
}
