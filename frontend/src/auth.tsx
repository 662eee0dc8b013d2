/**
 * Signing in (Cognito through `POST /api/auth/login`) and the session it makes.
 *
 * The ID token lives in sessionStorage (this tab, until it closes); the API client sends
 * it as `Authorization: Bearer`. When the service says `auth: "cognito"` and there is no
 * session, or any call answers 401, the app is replaced by the sign-in screen.
 */
import { createContext, useCallback, useContext, useEffect, useRef, useState, type FormEvent, type ReactNode } from "react";
import { api, ApiError, setAuthToken, setUnauthorizedHandler, type DemoUser, type Health } from "./api";

export const TOKEN_KEY = "brightrun.idToken";
export const USER_KEY = "brightrun.user";
const DATASET_KEY = "brightrun.dataset";

export interface Session {
  token: string;
  email: string;
  tenant_id: string;
  /** Epoch milliseconds. */
  expires_at: number;
}

export function loadSession(now = Date.now()): Session | null {
  try {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const raw = sessionStorage.getItem(USER_KEY);
    if (!token || !raw) return null;
    const user = JSON.parse(raw) as Partial<Session>;
    if (typeof user.email !== "string" || typeof user.tenant_id !== "string") return null;
    const expires = typeof user.expires_at === "number" ? user.expires_at : 0;
    if (expires <= now) return null;
    return { token, email: user.email, tenant_id: user.tenant_id, expires_at: expires };
  } catch {
    return null;
  }
}

/** A session from an ID token's own claims (a hosted-UI redirect hands back just the token). */
export function sessionFromToken(token: string): Session | null {
  try {
    const part = token.split(".")[1] ?? "";
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const claims = JSON.parse(json) as Record<string, unknown>;
    const tenant = claims["custom:tenant_id"];
    const email = claims["email"];
    const exp = claims["exp"];
    if (typeof tenant !== "string" || typeof exp !== "number") return null;
    return { token, email: typeof email === "string" ? email : "", tenant_id: tenant, expires_at: exp * 1000 };
  } catch {
    return null;
  }
}

export function saveSession(session: Session): void {
  try {
    sessionStorage.setItem(TOKEN_KEY, session.token);
    const { token: _token, ...user } = session;
    sessionStorage.setItem(USER_KEY, JSON.stringify(user));
  } catch {
    /* storage unavailable: the session lasts as long as the page */
  }
  setAuthToken(session.token);
}

export function clearSession(): void {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(USER_KEY);
  } catch {
    /* ignore */
  }
  setAuthToken(null);
}

interface AuthState {
  session: Session | null;
  signOut: () => void;
}

const AuthContext = createContext<AuthState | null>(null);

/** The signed-in user, or null (no sign-in needed, or outside the gate). */
export function useAuth(): AuthState | null {
  return useContext(AuthContext);
}

type Gate = "loading" | "open" | "sign-in";

/** Renders `children` once signed in (or when the service needs no sign-in). */
export function AuthGate({ children }: { children: ReactNode }) {
  const [session, setSession] = useState<Session | null>(() => {
    const stored = loadSession();
    setAuthToken(stored?.token ?? null);
    return stored;
  });
  const [health, setHealth] = useState<Health | null>(null);
  const [healthFailed, setHealthFailed] = useState(false);
  const [expired, setExpired] = useState(false);

  useEffect(() => {
    setAuthToken(session?.token ?? null);
  }, [session]);

  useEffect(() => {
    setUnauthorizedHandler(() => {
      clearSession();
      setSession(null);
      setExpired(true);
    });
    return () => setUnauthorizedHandler(null);
  }, []);

  useEffect(() => {
    let live = true;
    api
      .health()
      .then((h) => live && setHealth(h))
      .catch(() => live && setHealthFailed(true));
    return () => {
      live = false;
    };
  }, []);

  const signOut = useCallback(() => {
    clearSession();
    try {
      localStorage.removeItem(DATASET_KEY); // the next user's tenant has other datasets
    } catch {
      /* ignore */
    }
    window.history.replaceState(null, "", window.location.pathname);
    setExpired(false);
    setSession(null);
  }, []);

  const onSignedIn = useCallback((s: Session) => {
    saveSession(s);
    setExpired(false);
    setSession(s);
  }, []);

  let gate: Gate = "loading";
  if (healthFailed) gate = "open"; // the app shows why the service cannot be reached
  else if (health) gate = health.auth === "cognito" && !session ? "sign-in" : "open";
  if (expired && !session) gate = "sign-in";

  if (gate === "loading") return <div className="signin-loading">Loading…</div>;
  if (gate === "sign-in") {
    return <SignIn demoUsers={health?.demo_users ?? []} expired={expired} onSignedIn={onSignedIn} />;
  }
  return <AuthContext.Provider value={{ session, signOut }}>{children}</AuthContext.Provider>;
}

const LAST_EMAIL_KEY = "brightrun.lastEmail";

function lastEmail(): string {
  try {
    return localStorage.getItem(LAST_EMAIL_KEY) ?? "";
  } catch {
    return "";
  }
}

function rememberEmail(email: string): void {
  try {
    localStorage.setItem(LAST_EMAIL_KEY, email);
  } catch {
    /* storage unavailable: the form starts empty next time */
  }
}

export function SignIn({
  demoUsers,
  expired,
  onSignedIn,
}: {
  demoUsers: DemoUser[];
  expired: boolean;
  onSignedIn: (s: Session) => void;
}) {
  // Only this browser's own last sign-in is offered: never another organisation's user
  // (the demo users are listed below, each behind its own "Use" button).
  const [email, setEmail] = useState(lastEmail);
  const [password, setPassword] = useState("");
  const passwordRef = useRef<HTMLInputElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const r = await api.login(email.trim(), password);
      rememberEmail(r.email);
      onSignedIn({
        token: r.id_token,
        email: r.email,
        tenant_id: r.tenant_id,
        expires_at: Date.now() + Math.max(0, r.expires_in - 30) * 1000,
      });
    } catch (err) {
      setError(err instanceof ApiError || err instanceof Error ? err.message : String(err));
      // A wrong password is not left in the field: type it again.
      setPassword("");
      passwordRef.current?.focus();
      setBusy(false);
    }
  };

  return (
    <main className="signin-page">
      <form className="signin-card" onSubmit={(e) => void submit(e)} data-testid="signin-form" aria-labelledby="signin-title">
        <h1 id="signin-title">Bright Run Conversation Studio</h1>
        <p className="muted">Sign in to your organisation's workspace.</p>
        {expired && (
          <p className="signin-notice" role="status" data-testid="signin-expired">
            Your session has ended: please sign in again.
          </p>
        )}
        <label htmlFor="signin-email">Email</label>
        <input
          id="signin-email"
          type="email"
          autoComplete="username"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          data-testid="signin-email"
        />
        <label htmlFor="signin-password">Password</label>
        <input
          id="signin-password"
          type="password"
          autoComplete="current-password"
          ref={passwordRef}
          aria-describedby={error ? "signin-error" : undefined}
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          data-testid="signin-password"
        />
        {error && (
          <p className="signin-error" role="alert" id="signin-error" data-testid="signin-error">
            {error}
          </p>
        )}
        <button type="submit" className="btn btn-primary" disabled={busy || !email || !password} data-testid="btn-signin">
          {busy ? "Signing in…" : "Sign in"}
        </button>
        {demoUsers.length > 0 && (
          <div className="signin-demo" data-testid="signin-demo-users">
            <p className="muted">Local demo users (one organisation each):</p>
            <ul>
              {demoUsers.map((u, i) => (
                <li key={u.email}>
                  <button
                    type="button"
                    className="btn btn-small"
                    onClick={() => {
                      setEmail(u.email);
                      setPassword(u.password);
                    }}
                    data-testid={`signin-demo-${i}`}
                  >
                    Use
                  </button>{" "}
                  <strong>{u.organisation}</strong>: {u.email} / <code>{u.password}</code>
                </li>
              ))}
            </ul>
          </div>
        )}
      </form>
    </main>
  );
}

/** Header box: who is signed in, to which organisation, and Sign out. */
export function UserBox() {
  const auth = useAuth();
  if (!auth?.session) return null;
  const { session, signOut } = auth;
  return (
    <div className="user-box">
      <span data-testid="signed-in-user" title={`Tenant ${session.tenant_id}`}>
        {session.email} <span className="muted">({session.tenant_id})</span>
      </span>
      <button type="button" className="btn btn-small" onClick={signOut} data-testid="btn-signout">
        Sign out
      </button>
    </div>
  );
}
