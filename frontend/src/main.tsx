import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { setAuthToken } from "./api";
import { App } from "./App";
import { ToastProvider } from "./components/Toasts";
import "./styles.css";

// Signed-in deployments: a sign-in redirect (e.g. the Cognito hosted UI) hands the ID
// token back in the URL fragment; keep it for this browser session and tidy the URL.
const TOKEN_KEY = "brightrun.idToken";
try {
  const fragment = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  const fromRedirect = fragment.get("id_token");
  if (fromRedirect) {
    sessionStorage.setItem(TOKEN_KEY, fromRedirect);
    window.history.replaceState(null, "", `${window.location.pathname}${window.location.search}`);
  }
  setAuthToken(sessionStorage.getItem(TOKEN_KEY));
} catch {
  /* storage unavailable: requests go without a token */
}

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <ToastProvider>
        <App />
      </ToastProvider>
    </StrictMode>,
  );
}
