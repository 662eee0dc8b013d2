import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { AuthGate, saveSession, sessionFromToken } from "./auth";
import { ToastProvider } from "./components/Toasts";
import "./styles.css";

// A sign-in redirect (e.g. the Cognito hosted UI) may hand the ID token back in the URL
// fragment; keep it for this browser session and tidy the URL. Otherwise the app's own
// sign-in screen (AuthGate) signs in through POST /api/auth/login.
try {
  const fragment = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  const fromRedirect = fragment.get("id_token");
  if (fromRedirect) {
    const session = sessionFromToken(fromRedirect);
    if (session) saveSession(session);
    window.history.replaceState(null, "", `${window.location.pathname}${window.location.search}`);
  }
} catch {
  /* storage unavailable: the sign-in screen asks */
}

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <ToastProvider>
        <AuthGate>
          <App />
        </AuthGate>
      </ToastProvider>
    </StrictMode>,
  );
}
