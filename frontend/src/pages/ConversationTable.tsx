import { useEffect, useRef, type ReactNode } from "react";
import type { ConversationSummary } from "../api";
import { QualityBadge, StatusBadge } from "../components/Badges";
import { Help } from "../components/Help";
import { dateTime, money, shortDateTime, shortId, TIER_LABEL } from "../format";
import { HELP } from "../help";
import type { DashboardState, SortKey } from "../urlState";

/** The first reason beside the score, cut to fit; every reason in the tooltip. */
function QualityReasons({ id, reasons }: { id: string; reasons: string[] | undefined }) {
  if (!reasons || reasons.length === 0) return null;
  const more = reasons.length - 1;
  return (
    <span className="quality-reasons" title={reasons.join("\n")} data-testid={`quality-reasons-${id}`}>
      <span className="quality-reason">{reasons[0]}</span>
      {more > 0 && (
        <>
          <span className="quality-reasons-more" aria-hidden="true">
            +{more}
          </span>
          <span className="sr-only">; {reasons.slice(1).join("; ")}</span>
        </>
      )}
    </span>
  );
}

export interface Column {
  key: string;
  label: string;
  sort: SortKey;
  help?: string;
  render: (c: ConversationSummary) => ReactNode;
}

export const COLUMNS: Column[] = [
  { key: "id", label: "ID", sort: "conversation_id", render: (c) => <code title={c.conversation_id}>{shortId(c.conversation_id)}</code> },
  { key: "persona", label: "Persona", sort: "persona", render: (c) => c.persona },
  { key: "emotion", label: "Emotion", sort: "emotion", render: (c) => c.emotion },
  { key: "topic", label: "Topic", sort: "topic", render: (c) => c.topic },
  { key: "intent", label: "Intent", sort: "intent", render: (c) => c.intent },
  { key: "tone", label: "Tone", sort: "tone", render: (c) => c.tone },
  { key: "tier", label: "Tier", sort: "tier", help: HELP.tiers, render: (c) => TIER_LABEL[c.tier] ?? c.tier },
  { key: "status", label: "Status", sort: "status", help: HELP.status, render: () => null },
  {
    key: "quality",
    label: "Quality",
    sort: "quality_score",
    help: HELP.quality,
    render: (c) => (
      <span className="quality-cell">
        <QualityBadge score={c.quality_score} testId={`quality-${c.conversation_id}`} />
        <QualityReasons id={c.conversation_id} reasons={c.quality_reasons} />
      </span>
    ),
  },
  {
    key: "cost",
    label: "Cost",
    sort: "actual_cost_usd",
    help: HELP.cost,
    render: (c) =>
      c.actual_cost_usd !== null && c.actual_cost_usd !== undefined ? (
        money(c.actual_cost_usd)
      ) : (
        <span className="muted" title="Estimated: not generated yet">
          {c.estimated_cost_usd !== null && c.estimated_cost_usd !== undefined ? `~${money(c.estimated_cost_usd)}` : "–"}
        </span>
      ),
  },
  {
    key: "created",
    label: "Created",
    sort: "created_at",
    render: (c) => <time dateTime={c.created_at} title={dateTime(c.created_at)}>{shortDateTime(c.created_at)}</time>,
  },
];

/** Columns left out while the review panel takes half the screen, so that status and
 * quality stay visible without scrolling sideways (the per-row Generate button goes too:
 * the panel has its own). */
export const COMPACT_HIDDEN = ["id", "intent", "tone", "cost", "created"];

interface Props {
  items: ConversationSummary[];
  state: DashboardState;
  selected: Set<string>;
  activeId: string | null;
  onToggle: (id: string) => void;
  onToggleAll: (checked: boolean) => void;
  onSort: (key: SortKey) => void;
  onOpen: (id: string) => void;
  onGenerate: (c: ConversationSummary) => void;
  onShowError: (c: ConversationSummary) => void;
  generatingIds: Set<string>;
  /** Narrow layout (review panel open): fewer columns. */
  compact?: boolean;
}

export function ConversationTable(props: Props) {
  const { items, state, selected, activeId } = props;
  const visible = COLUMNS.filter((c) => !state.hiddenCols.includes(c.key) && !(props.compact && COMPACT_HIDDEN.includes(c.key)));
  const allChecked = items.length > 0 && items.every((i) => selected.has(i.conversation_id));
  const someChecked = items.some((i) => selected.has(i.conversation_id));
  const headRef = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (headRef.current) headRef.current.indeterminate = someChecked && !allChecked;
  }, [someChecked, allChecked]);

  return (
    <div className="table-wrap">
      <table className={`conv-table${props.compact ? " compact" : ""}`} data-testid="conversation-table">
        <thead>
          <tr>
            <th className="col-check">
              <input
                ref={headRef}
                type="checkbox"
                aria-label="Select all conversations on this page"
                checked={allChecked}
                onChange={(e) => props.onToggleAll(e.target.checked)}
                data-testid="select-all"
              />
            </th>
            {visible.map((col) => {
              const active = state.sort === col.sort;
              return (
                <th
                  key={col.key}
                  aria-sort={active ? (state.order === "asc" ? "ascending" : "descending") : "none"}
                  className={`col-${col.key}`}
                >
                  <button type="button" className="sort-btn" onClick={() => props.onSort(col.sort)} data-testid={`sort-${col.sort}`}>
                    {col.label}
                    <span className="sort-ind" aria-hidden="true">
                      {active ? (state.order === "asc" ? " ▲" : " ▼") : " ↕"}
                    </span>
                  </button>
                  {col.help && <Help text={col.help} />}
                </th>
              );
            })}
            {!props.compact && (
              <th className="col-actions">
                <span className="sr-only">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {items.map((c) => {
            const id = c.conversation_id;
            const canGenerate = c.status === "not_generated" || c.status === "failed";
            return (
              <tr
                key={id}
                className={`${activeId === id ? "active " : ""}${selected.has(id) ? "selected" : ""}`}
                onClick={() => props.onOpen(id)}
                onKeyDown={(e) => {
                  if (e.key === "Enter" && e.target === e.currentTarget) props.onOpen(id);
                }}
                tabIndex={0}
                data-testid={`conv-row-${id}`}
                data-status={c.status}
                aria-label={`Conversation ${id}: ${c.persona}, ${c.topic}`}
              >
                <td className="col-check" onClick={(e) => e.stopPropagation()}>
                  <input
                    type="checkbox"
                    aria-label={`Select conversation ${id}`}
                    checked={selected.has(id)}
                    onChange={() => props.onToggle(id)}
                    data-testid={`row-check-${id}`}
                  />
                </td>
                {visible.map((col) => (
                  <td key={col.key} className={`col-${col.key}`}>
                    {col.key === "status" ? (
                      <StatusBadge
                        status={c.status}
                        testId={`status-${id}`}
                        onClick={c.status === "failed" ? () => props.onShowError(c) : undefined}
                      />
                    ) : (
                      col.render(c)
                    )}
                  </td>
                ))}
                {!props.compact && (
                  <td className="col-actions" onClick={(e) => e.stopPropagation()}>
                    {canGenerate && (
                      <button
                        type="button"
                        className="btn btn-small"
                        disabled={props.generatingIds.has(id)}
                        onClick={() => props.onGenerate(c)}
                        data-testid={`btn-generate-${id}`}
                        title={c.status === "failed" ? "Try writing this conversation again" : "Write this conversation now"}
                      >
                        {props.generatingIds.has(id) ? "Starting…" : c.status === "failed" ? "Retry" : "Generate"}
                      </button>
                    )}
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
