import { act, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { api } from "./api";
import { App } from "./App";
import { AuthGate, loadSession, sessionFromToken, TOKEN_KEY, USER_KEY, UserBox } from "./auth";
import { ToastProvider } from "./components/Toasts";

const DEMO = [
  { email: "owner@harbor-pine.example", password: "HarborPine-demo-2026", organisation: "Harbor Pine" },
  { email: "owner@northwind.example", password: "Northwind-demo-2026", organisation: "Northwind" },
];
const TENANT = { "owner@harbor-pine.example": "tenant-demo", "owner@northwind.example": "tenant-northwind" } as Record<string, string>;

interface Call {
  method: string;
  path: string;
  auth: string | null;
  body: unknown;
}

let calls: Call[] = [];
let authMode = "cognito";
let rejectTokens = false;

function reply(status: number, body: unknown) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

function installFetch() {
  calls = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: string, init: RequestInit = {}) => {
      const url = new URL(input, "http://localhost");
      const headers = (init.headers ?? {}) as Record<string, string>;
      const body = typeof init.body === "string" ? JSON.parse(init.body) : undefined;
      const call = { method: init.method ?? "GET", path: url.pathname, auth: headers["Authorization"] ?? null, body };
      calls.push(call);
      if (call.path === "/api/health") {
        return reply(200, { status: "ok", llm: "simulator", auth: authMode, demo_users: authMode === "cognito" ? DEMO : undefined });
      }
      if (call.path === "/api/auth/login") {
        const b = body as { email: string; password: string };
        const user = DEMO.find((u) => u.email === b.email && u.password === b.password);
        if (!user) return reply(401, { error: { code: "unauthorized", message: "incorrect email or password", details: {} } });
        return reply(200, { id_token: `token-for-${user.email}`, expires_in: 3600, tenant_id: TENANT[user.email], email: user.email });
      }
      if (authMode === "cognito" && (!call.auth || rejectTokens)) {
        return reply(401, { error: { code: "unauthorized", message: "sign in", details: {} } });
      }
      if (call.path === "/api/datasets") return reply(200, { items: [], total: 0 });
      return reply(200, { items: [], total: 0, page: 1, page_size: 25, next_cursor: null });
    }),
  );
}

/** A stand-in for the app: one authenticated call, and the header's user box. */
function Probe() {
  return (
    <div>
      <UserBox />
      <button type="button" data-testid="probe-call" onClick={() => void api.listDatasets().catch(() => undefined)}>
        call
      </button>
      <span data-testid="probe">app</span>
    </div>
  );
}

function renderGate(children = <Probe />) {
  return render(
    <ToastProvider>
      <AuthGate>{children}</AuthGate>
    </ToastProvider>,
  );
}

beforeEach(() => {
  authMode = "cognito";
  rejectTokens = false;
  sessionStorage.clear();
  window.history.replaceState(null, "", "/");
  installFetch();
});

afterEach(() => {
  vi.unstubAllGlobals();
  sessionStorage.clear();
});

/** The form starts without a password: pick the first demo user, then sign in. */
async function signInAsFirstDemoUser() {
  fireEvent.click(await screen.findByTestId("signin-demo-0"));
  fireEvent.click(screen.getByTestId("btn-signin"));
}

describe("sign-in", () => {
  it("asks for sign-in, not prefilled with any organisation's user, and keeps the token for the tab", async () => {
    localStorage.clear();
    renderGate();
    const email = (await screen.findByTestId("signin-email")) as HTMLInputElement;
    expect(email.value).toBe("");
    expect((screen.getByTestId("signin-password") as HTMLInputElement).value).toBe("");
    expect(screen.getByTestId("btn-signin")).toBeDisabled();
    expect(screen.queryByTestId("probe")).not.toBeInTheDocument();
    expect(screen.getByTestId("signin-demo-users")).toHaveTextContent("Northwind");
    fireEvent.click(screen.getByTestId("signin-demo-0"));

    fireEvent.click(screen.getByTestId("btn-signin"));
    expect(await screen.findByTestId("probe")).toBeInTheDocument();
    const login = calls.find((c) => c.path === "/api/auth/login");
    expect(login?.method).toBe("POST");
    expect(login?.body).toEqual({ email: DEMO[0]!.email, password: DEMO[0]!.password });
    expect(sessionStorage.getItem(TOKEN_KEY)).toBe(`token-for-${DEMO[0]!.email}`);
    expect(screen.getByTestId("signed-in-user")).toHaveTextContent("owner@harbor-pine.example");
    expect(screen.getByTestId("signed-in-user")).toHaveTextContent("tenant-demo");

    fireEvent.click(screen.getByTestId("probe-call"));
    await waitFor(() => expect(calls.some((c) => c.path === "/api/datasets")).toBe(true));
    expect(calls.find((c) => c.path === "/api/datasets")?.auth).toBe(`Bearer token-for-${DEMO[0]!.email}`);
  });

  it("signs in as the other demo user from the hints", async () => {
    renderGate();
    fireEvent.click(await screen.findByTestId("signin-demo-1"));
    expect((screen.getByTestId("signin-email") as HTMLInputElement).value).toBe(DEMO[1]!.email);
    fireEvent.click(screen.getByTestId("btn-signin"));
    expect(await screen.findByTestId("signed-in-user")).toHaveTextContent("tenant-northwind");
  });

  it("shows a wrong password's error and stays on the form", async () => {
    renderGate();
    fireEvent.click(await screen.findByTestId("signin-demo-0"));
    fireEvent.change(screen.getByTestId("signin-password"), { target: { value: "wrong" } });
    fireEvent.click(screen.getByTestId("btn-signin"));
    expect(await screen.findByTestId("signin-error")).toHaveTextContent("incorrect email or password");
    // the wrong password is cleared (and focused) for the next try; the email stays
    expect((screen.getByTestId("signin-password") as HTMLInputElement).value).toBe("");
    expect(document.activeElement).toBe(screen.getByTestId("signin-password"));
    expect((screen.getByTestId("signin-email") as HTMLInputElement).value).toBe(DEMO[0]!.email);
    expect(screen.queryByTestId("probe")).not.toBeInTheDocument();
    expect(screen.queryByTestId("signin-expired")).not.toBeInTheDocument();
    expect(sessionStorage.getItem(TOKEN_KEY)).toBeNull();
  });

  it("goes back to sign-in when any call answers 401", async () => {
    renderGate();
    await signInAsFirstDemoUser();
    await screen.findByTestId("probe");
    rejectTokens = true;
    fireEvent.click(screen.getByTestId("probe-call"));
    expect(await screen.findByTestId("signin-expired")).toBeInTheDocument();
    expect(screen.queryByTestId("probe")).not.toBeInTheDocument();
    expect(sessionStorage.getItem(TOKEN_KEY)).toBeNull();
    // Signing in again brings the app back.
    rejectTokens = false;
    await signInAsFirstDemoUser();
    expect(await screen.findByTestId("probe")).toBeInTheDocument();
  });

  it("signs out: clears the session and the last dataset, and asks again", async () => {
    localStorage.setItem("brightrun.dataset", "ds_harbor");
    window.history.replaceState(null, "", "/?dataset_id=ds_harbor");
    renderGate();
    await signInAsFirstDemoUser();
    fireEvent.click(await screen.findByTestId("btn-signout"));
    expect(await screen.findByTestId("signin-email")).toBeInTheDocument();
    expect(screen.queryByTestId("signin-expired")).not.toBeInTheDocument();
    expect(sessionStorage.getItem(TOKEN_KEY)).toBeNull();
    expect(sessionStorage.getItem(USER_KEY)).toBeNull();
    expect(localStorage.getItem("brightrun.dataset")).toBeNull();
    expect(window.location.search).toBe("");
  });

  it("reuses a stored session, but not an expired one", async () => {
    sessionStorage.setItem(TOKEN_KEY, "stored-token");
    sessionStorage.setItem(USER_KEY, JSON.stringify({ email: "a@b.example", tenant_id: "t1", expires_at: Date.now() + 60_000 }));
    const { unmount } = renderGate();
    expect(await screen.findByTestId("signed-in-user")).toHaveTextContent("a@b.example");
    unmount();
    sessionStorage.setItem(USER_KEY, JSON.stringify({ email: "a@b.example", tenant_id: "t1", expires_at: Date.now() - 1 }));
    expect(loadSession()).toBeNull();
    renderGate();
    expect(await screen.findByTestId("signin-email")).toBeInTheDocument();
  });

  it("needs no sign-in when the service runs with AUTH_MODE=none", async () => {
    authMode = "none";
    renderGate();
    expect(await screen.findByTestId("probe")).toBeInTheDocument();
    expect(screen.queryByTestId("signin-email")).not.toBeInTheDocument();
    expect(screen.queryByTestId("signed-in-user")).not.toBeInTheDocument();
  });

  it("puts the signed-in user and Sign out in the app's header", async () => {
    renderGate(<App />);
    await signInAsFirstDemoUser();
    const user = await screen.findByTestId("signed-in-user");
    expect(user.closest("header")).not.toBeNull();
    await waitFor(() => expect(calls.some((c) => c.path === "/api/datasets" && c.auth)).toBe(true));
    expect(calls.filter((c) => c.path === "/api/datasets").every((c) => c.auth === `Bearer token-for-${DEMO[0]!.email}`)).toBe(true);
    await act(async () => {
      fireEvent.click(screen.getByTestId("btn-signout"));
    });
    expect(await screen.findByTestId("signin-email")).toBeInTheDocument();
  });

  it("reads a redirect's token claims into a session", () => {
    const payload = btoa(JSON.stringify({ email: "x@y.example", "custom:tenant_id": "t9", exp: 2_000_000_000 }))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "");
    expect(sessionFromToken(`h.${payload}.s`)).toEqual({
      token: `h.${payload}.s`,
      email: "x@y.example",
      tenant_id: "t9",
      expires_at: 2_000_000_000_000,
    });
    expect(sessionFromToken("not-a-token")).toBeNull();
  });
});
