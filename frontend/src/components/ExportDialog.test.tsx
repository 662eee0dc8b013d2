/** The export dialog makes every failure visible: an export that failed on the request
 * path (an error naming the stored failed export), one that failed in the background
 * (seen while polling), and a request that stored nothing. */
import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../api";
import { ExportDialog, failedExport } from "./ExportDialog";
import { ToastProvider } from "./Toasts";

type Reply = { status: number; body: unknown };
let replies: Record<string, Reply[]> = {};
let calls: string[] = [];

function reply({ status, body }: Reply) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

beforeEach(() => {
  replies = {};
  calls = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: string, init?: RequestInit) => {
      const key = `${init?.method ?? "GET"} ${new URL(input, "http://localhost").pathname}`;
      calls.push(key);
      const queue = replies[key];
      const next = queue && queue.length > 1 ? queue.shift() : queue?.[0];
      return reply(next ?? { status: 404, body: { error: { code: "not_found", message: key, details: {} } } });
    }),
  );
});

afterEach(() => {
  vi.unstubAllGlobals();
});

function renderDialog(onCreated = vi.fn()) {
  render(
    <ToastProvider>
      <ExportDialog datasetId="ds_1" onClose={() => undefined} onCreated={onCreated} />
    </ToastProvider>,
  );
  fireEvent.click(screen.getByTestId("btn-export-create"));
  return onCreated;
}

const STORAGE_ERROR = "An error occurred (NoSuchBucket) when calling the CreateMultipartUpload operation: The specified bucket does not exist";

describe("an export that fails", () => {
  it("on the request path shows the stored export's failure in the dialog and tells the page", async () => {
    replies["POST /api/export/conversations"] = [
      {
        status: 500,
        body: {
          error: {
            code: "export_failed",
            message: `the export failed: ${STORAGE_ERROR}`,
            details: { export_id: "exp_9", status: "failed", error_message: STORAGE_ERROR },
          },
        },
      },
    ];
    const onCreated = renderDialog();
    const status = await screen.findByTestId("export-status");
    expect(status).toHaveAttribute("data-status", "failed");
    expect(status).toHaveAttribute("role", "alert");
    expect(within(status).getByTestId("export-failure")).toHaveTextContent(`The export failed: ${STORAGE_ERROR}`);
    expect(status).toHaveTextContent("listed as failed in the export history");
    expect(onCreated).toHaveBeenCalledWith(expect.objectContaining({ export_id: "exp_9", status: "failed" }));
    // shown once: in the dialog, not again as a toast
    expect(screen.queryByTestId("toast")).not.toBeInTheDocument();
    expect(screen.queryByTestId("export-error")).not.toBeInTheDocument();
    // nothing is pending: the user can try again at once
    expect(screen.getByTestId("btn-export-create")).toBeEnabled();
  });

  it("in the background shows its message once polling sees it", async () => {
    const pending = { export_id: "exp_7", format: "openai", status: "pending" };
    replies["POST /api/export/conversations"] = [{ status: 202, body: pending }];
    replies["GET /api/exports/exp_7"] = [
      { status: 200, body: { ...pending, status: "failed", error_message: "the export did not finish: its worker stopped; export again" } },
    ];
    renderDialog();
    expect(await screen.findByTestId("export-status")).toHaveAttribute("data-status", "pending");
    await waitFor(() => expect(screen.getByTestId("export-status")).toHaveAttribute("data-status", "failed"), { timeout: 4000 });
    expect(screen.getByTestId("export-failure")).toHaveTextContent("the export did not finish: its worker stopped");
    expect(calls).toContain("GET /api/exports/exp_7");
  });

  it("before anything was stored (bad input) shows the error in the dialog", async () => {
    replies["POST /api/export/conversations"] = [
      { status: 400, body: { error: { code: "validation_error", message: "no approved conversations match", details: {} } } },
    ];
    const onCreated = renderDialog();
    expect(await screen.findByTestId("export-error")).toHaveTextContent("Could not create the export: no approved conversations match");
    expect(screen.queryByTestId("export-status")).not.toBeInTheDocument();
    expect(onCreated).not.toHaveBeenCalled();
  });
});

describe("failedExport", () => {
  it("reads the failed export from an error's details, and only from an ApiError naming one", () => {
    const named = new ApiError(422, "unprocessable", "none of the approved conversations can be written as anthropic", { export_id: "exp_1", status: "failed" });
    expect(failedExport(named, "anthropic")).toEqual({
      export_id: "exp_1",
      format: "anthropic",
      status: "failed",
      error_message: "none of the approved conversations can be written as anthropic",
    });
    expect(failedExport(new ApiError(400, "validation_error", "bad", {}), "openai")).toBeNull();
    expect(failedExport(new Error("network"), "openai")).toBeNull();
  });
});
