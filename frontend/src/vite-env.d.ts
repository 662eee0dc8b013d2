/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** Dev only: API origin when the app is not served by the API itself. */
  readonly VITE_API_BASE?: string;
}

interface ImportMeta {
  readonly env: ImportMetaEnv;
}
