import { useCallback, useEffect, useState, type FormEvent } from "react";
import { api, type NotificationMessage, type Subscription } from "../api";
import { useToast } from "../components/Toasts";
import { dateTime } from "../format";

const KIND_LABEL: Record<string, string> = {
  "job.completed": "Generation finished",
  "job.failed": "Generation failed",
  "budget.warning": "Budget warning",
  "budget.paused": "Paused at budget",
};

export function NotificationsPage() {
  const toast = useToast();
  const [email, setEmail] = useState("");
  const [busy, setBusy] = useState(false);
  const [subs, setSubs] = useState<Subscription[] | null>(null);
  const [messages, setMessages] = useState<NotificationMessage[] | null>(null);

  const load = useCallback(async () => {
    try {
      setSubs((await api.listSubscriptions()).items);
    } catch (e) {
      toast.error(e, "Could not load subscriptions");
      setSubs((s) => s ?? []);
    }
    try {
      setMessages((await api.listMessages()).items);
    } catch (e) {
      toast.error(e, "Could not load messages");
      setMessages((m) => m ?? []);
    }
  }, [toast]);

  useEffect(() => {
    void load();
  }, [load]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email.trim())) {
      toast.error("Please enter a valid email address.");
      return;
    }
    setBusy(true);
    try {
      await api.subscribe(email.trim());
      toast.success(`Subscribed ${email.trim()}. Check the inbox for a confirmation email.`);
      setEmail("");
      await load();
    } catch (err) {
      toast.error(err, "Could not subscribe");
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="page" data-testid="notifications-page">
      <h2 className="page-title">Notifications</h2>
      <p className="small muted">Get an email when a generation finishes, fails, or reaches 50%, 75%, 90% or 100% of its budget.</p>
      <section className="card" aria-label="Subscribe">
        <form className="button-row" onSubmit={(e) => void submit(e)}>
          <label>
            Email address{" "}
            <input type="email" value={email} onChange={(e) => setEmail(e.target.value)} placeholder="you@example.com" data-testid="subscribe-email" required />
          </label>
          <button type="submit" className="btn btn-primary" disabled={busy} data-testid="btn-subscribe">
            Subscribe
          </button>
        </form>
        <h3>Subscribed addresses</h3>
        {!subs && <p className="loading">Loading…</p>}
        {subs && subs.length === 0 && <p className="muted" data-testid="empty-subscriptions">Nobody is subscribed yet.</p>}
        {subs && subs.length > 0 && (
          <ul className="messages" data-testid="subscriptions">
            {subs.map((s, i) => (
              <li key={s.subscription_id ?? `${s.email}-${i}`}>
                {s.email} {s.status && <span className="small muted">({s.status})</span>}
              </li>
            ))}
          </ul>
        )}
      </section>
      <section className="card" aria-label="Recent messages">
        <div className="card-head">
          <h3>Recent messages</h3>
          <span className="spacer" />
          <button type="button" className="btn btn-small" onClick={() => void load()} data-testid="btn-refresh-messages">
            Refresh
          </button>
        </div>
        {!messages && <p className="loading">Loading…</p>}
        {messages && messages.length === 0 && <p className="muted" data-testid="empty-messages">No messages yet. They appear here when a generation job sends one.</p>}
        {messages && messages.length > 0 && (
          <ul className="messages" data-testid="messages">
            {messages.map((m, i) => (
              <li key={m.message_id ?? i} className={`message kind-${m.kind.replace(/\W/g, "-")}`}>
                <div>
                  <b>{m.subject}</b> <span className="badge">{KIND_LABEL[m.kind] ?? m.kind}</span>{" "}
                  <span className="small muted">{dateTime(m.at)}</span>
                </div>
                <div className="message-body small">{m.body}</div>
              </li>
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}
