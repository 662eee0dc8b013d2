import { useState } from "react";
import type { Diversity, Repetition } from "../api";
import { ConversationCount, ConversationLinks } from "../components/ConversationLinks";
import { Help } from "../components/Help";
import { dateTime, plural } from "../format";
import { HELP } from "../help";
import { percent, phraseQuery } from "../quality";
import { emptyFilters, type DashboardState } from "../urlState";

interface Props {
  diversity: Diversity;
  state: DashboardState;
  onChange: (next: DashboardState) => void;
  onOpen: (conversationId: string) => void;
  loading?: boolean;
}

const ROLES = ["user", "assistant"] as const;
/** Entries shown per list before "Show all". */
export const SHOWN = 5;

/** The first SHOWN items of a list, with a button that shows the rest. */
function useShowAll(): [(key: string) => boolean, (key: string) => void] {
  const [open, setOpen] = useState<Set<string>>(new Set());
  return [(key) => open.has(key), (key) => setOpen((s) => new Set(s).add(key))];
}

function MoreButton({ total, onClick, testId }: { total: number; onClick: () => void; testId: string }) {
  if (total <= SHOWN) return null;
  return (
    <button type="button" className="link-btn small" onClick={onClick} data-testid={testId}>
      Show all {total}
    </button>
  );
}

function fixed(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(2);
}

/**
 * The dataset's repeats, each one click from the conversations behind it: an id opens
 * the conversation in the review panel, "Show in table" filters the table (a phrase as a
 * quoted phrase search, a cell as its persona and topic).
 */
export function DiversityView({ diversity: d, state, onChange, onOpen, loading }: Props) {
  const cleared = { ...state, filters: emptyFilters(), qualityMin: null, qualityMax: null, flagged: null, q: "", page: 1, insight: null };
  const showPhrase = (text: string) => onChange({ ...cleared, q: phraseQuery(text) });
  const minConversations = d.thresholds?.["min_conversations"] ?? 3;
  const [isOpen, openAll] = useShowAll();

  const repetitions = (kind: "openers" | "phrases", label: string) => (
    <div className="insight-columns">
      {ROLES.map((role) => {
        const list: Repetition[] = d[kind][role] ?? [];
        return (
          <div key={role} data-testid={`diversity-${kind}-${role}`}>
            <h4>{role === "user" ? "User turns" : "Assistant turns"}</h4>
            {list.length === 0 ? (
              <p className="small muted">
                No {label} shared by {minConversations} or more conversations.
              </p>
            ) : (
              <>
                <ol className="repetitions">
                  {list.slice(0, isOpen(`${kind}-${role}`) ? list.length : SHOWN).map((r, i) => (
                    <li key={`${r.text}-${i}`} data-testid={`${kind === "openers" ? "opener" : "phrase"}-${role}-${i}`}>
                      <q className="repetition-text">{r.text}</q>
                      <span className="small muted">{percent(r.share)}</span>
                      <ConversationCount ids={r.conversation_ids} count={r.count} onOpen={onOpen} activeId={state.conv} />
                      <button
                        type="button"
                        className="btn btn-small"
                        onClick={() => showPhrase(r.text)}
                        title={`List the conversations containing “${r.text}”`}
                        data-testid={`btn-filter-${kind === "openers" ? "opener" : "phrase"}-${role}-${i}`}
                      >
                        Show in table
                      </button>
                    </li>
                  ))}
                </ol>
                {!isOpen(`${kind}-${role}`) && (
                  <MoreButton total={list.length} onClick={() => openAll(`${kind}-${role}`)} testId={`btn-more-${kind}-${role}`} />
                )}
              </>
            )}
          </div>
        );
      })}
    </div>
  );

  return (
    <section className="card insight-view" aria-labelledby="diversity-title" data-testid="diversity-view">
      <div className="card-head">
        <h2 id="diversity-title">
          Diversity <Help text={HELP.diversity} />
        </h2>
        <span className="summary-figure">
          {d.diversity_score === null ? "–" : Math.round(d.diversity_score)}
          <span className="small muted">/100</span>
        </span>
        <span className="small muted">
          {plural(d.conversation_count, "conversation")} · measured {dateTime(d.computed_at)}
          {loading ? " · refreshing…" : ""}
        </span>
        <span className="spacer" />
        <button type="button" className="btn btn-small" onClick={() => onChange({ ...state, insight: null })} data-testid="btn-close-insight">
          ← Back to the table
        </button>
      </div>

      <div className="insight-columns">
        <div>
          <h3>Unique wording</h3>
          <table className="simple-table distinct-table" tabIndex={0} data-testid="diversity-distinct">
            <caption className="sr-only">Distinct word n-grams (unique / all)</caption>
            <thead>
              <tr>
                <th scope="col">Unique share of</th>
                <th scope="col">
                  words <span className="muted small">(distinct-1)</span>
                </th>
                <th scope="col">
                  word pairs <span className="muted small">(distinct-2)</span>
                </th>
                <th scope="col">
                  triples <span className="muted small">(distinct-3)</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {(["user", "assistant", "all"] as const).map((k) => (
                <tr key={k}>
                  <th scope="row">{k === "all" ? "All turns" : k === "user" ? "User turns" : "Assistant turns"}</th>
                  <td>{fixed(d.distinct[k]?.distinct_1)}</td>
                  <td>{fixed(d.distinct[k]?.distinct_2)}</td>
                  <td>{fixed(d.distinct[k]?.distinct_3)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="small muted">
            Within one conversation, distinct-2 averages {fixed(d.distinct.per_conversation?.distinct_2)}: the repeats below are across
            conversations.
          </p>
        </div>
        <div>
          <h3>Conversations that repeat the most</h3>
          {d.offenders.length === 0 ? (
            <p className="small muted">No conversation stands out.</p>
          ) : (
            <ol className="repetitions" data-testid="diversity-offenders">
              {d.offenders.slice(0, isOpen("offenders") ? 10 : SHOWN).map((o) => (
                <li key={o.conversation_id} className="offender" data-testid={`offender-${o.conversation_id}`}>
                  <ConversationLinks ids={[o.conversation_id]} onOpen={onOpen} activeId={state.conv} />
                  <span className="small">{o.reasons.join("; ")}</span>
                </li>
              ))}
            </ol>
          )}
          {!isOpen("offenders") && <MoreButton total={Math.min(10, d.offenders.length)} onClick={() => openAll("offenders")} testId="btn-more-offenders" />}
        </div>
      </div>

      <h3>Near-duplicate clusters</h3>
      {d.near_duplicate_clusters.length === 0 ? (
        <p className="small muted" data-testid="diversity-clusters">
          No near-duplicate conversations.
        </p>
      ) : (
        <ol className="repetitions" data-testid="diversity-clusters">
          {d.near_duplicate_clusters.map((c, i) => (
            <li key={c.conversation_ids.join(",")} data-testid={`cluster-${i}`}>
              <b>{plural(c.size, "conversation")}</b> that read alike{" "}
              <span className="small muted">(similarity up to {percent(c.max_similarity)})</span>
              <ConversationLinks ids={c.conversation_ids} onOpen={onOpen} activeId={state.conv} />
            </li>
          ))}
        </ol>
      )}

      <h3>Repeated openings</h3>
      {repetitions("openers", "opening")}

      <h3>Repeated phrases</h3>
      {repetitions("phrases", "phrase")}

      <h3>Least diverse persona × topic combinations</h3>
      {d.cells.length === 0 ? (
        <p className="small muted">Not enough conversations per combination to compare.</p>
      ) : (
        <div className="table-scroll">
          <table className="simple-table" tabIndex={0} data-testid="diversity-cells">
            <thead>
              <tr>
                <th scope="col">Persona</th>
                <th scope="col">Topic</th>
                <th scope="col">Conversations</th>
                <th scope="col">distinct-2</th>
                <th scope="col">Shared openings</th>
                <th scope="col">Near-duplicates</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {d.cells.slice(0, 10).map((c, i) => (
                <tr key={`${c.persona}|${c.topic}`} data-testid={`diversity-cell-${i}`}>
                  <td>{c.persona}</td>
                  <td>{c.topic}</td>
                  <td>
                    <ConversationCount ids={c.conversation_ids} count={c.count} onOpen={onOpen} activeId={state.conv} />
                  </td>
                  <td>{fixed(c.distinct_2)}</td>
                  <td>{c.shared_openers}</td>
                  <td>{c.near_duplicates}</td>
                  <td>
                    <button
                      type="button"
                      className="btn btn-small"
                      onClick={() => onChange({ ...cleared, filters: { ...emptyFilters(), persona: [c.persona], topic: [c.topic] } })}
                      data-testid={`btn-filter-cell-${i}`}
                    >
                      Show in table
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

    </section>
  );
}
