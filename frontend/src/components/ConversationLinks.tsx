import { shortId } from "../format";

/** Conversation ids as buttons that open each one in the review panel. */
export function ConversationLinks({ ids, onOpen, activeId }: { ids: readonly string[]; onOpen: (id: string) => void; activeId?: string | null }) {
  return (
    <ul className="conv-links">
      {ids.map((id) => (
        <li key={id}>
          <button
            type="button"
            className={`link-btn mono small${activeId === id ? " active" : ""}`}
            aria-current={activeId === id ? "true" : undefined}
            title={`Open ${id} in the review panel`}
            onClick={() => onOpen(id)}
            data-testid={`open-conv-${id}`}
          >
            {shortId(id)}
          </button>
        </li>
      ))}
    </ul>
  );
}

/** "N conversations" that unfolds into their links. */
export function ConversationCount({
  ids,
  count,
  onOpen,
  activeId,
  testId,
}: {
  ids: readonly string[];
  count?: number;
  onOpen: (id: string) => void;
  activeId?: string | null;
  testId?: string;
}) {
  const n = count ?? ids.length;
  return (
    <details className="conv-count" data-testid={testId}>
      <summary>
        {n.toLocaleString()} {n === 1 ? "conversation" : "conversations"}
      </summary>
      <ConversationLinks ids={ids} onOpen={onOpen} activeId={activeId} />
    </details>
  );
}
