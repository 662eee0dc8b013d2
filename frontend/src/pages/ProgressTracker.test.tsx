import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { Job } from "../api";
import { ToastProvider } from "../components/Toasts";
import type { JobTracker } from "../jobs";
import { ProgressTracker, concurrencyText } from "./ProgressTracker";

const RUNNING: Job = {
  job_id: "job_1",
  status: "running",
  total: 1000,
  completed: 400,
  failed: 0,
  skipped: 0,
  cost_usd: 5,
  estimated_cost_usd: 12,
  concurrency: { target: 75, in_flight: 61, limit_reason: "rpm", latency_s: 6.04, rate_share: 1 },
};

function tracker(job: Job): JobTracker {
  return { job, track: () => {}, dismiss: () => {}, refresh: async () => {}, setJob: () => {}, error: null };
}

function show(job: Job) {
  return render(
    <ToastProvider>
      <ProgressTracker tracker={tracker(job)} />
    </ToastProvider>,
  );
}

describe("the progress view's concurrency", () => {
  it("shows the calls in flight, the target and what limits it", () => {
    show(RUNNING);
    const line = screen.getByTestId("progress-concurrency");
    expect(line).toHaveTextContent("61 of 75 calls in flight");
    expect(line).toHaveTextContent("limited by your account's requests per minute");
    expect(line).toHaveTextContent("6.0 s per answer");
    expect(line).toHaveAttribute("data-limit", "rpm");
    // the existing test ids stay
    expect(screen.getByTestId("progress-count")).toHaveTextContent("400 of 1,000 conversations");
    expect(screen.getByTestId("progress-bar")).toBeInTheDocument();
  });

  it("says when the job backs off or waits for a refusing provider", () => {
    expect(concurrencyText({ target: 20, in_flight: 3, limit_reason: "backoff", rate_share: 0.5 })).toBe(
      "3 of 20 calls in flight · limited by backing off: the provider refused calls · at 50% of the rate limit",
    );
    expect(concurrencyText({ target: 20, in_flight: 0, limit_reason: "breaker" })).toContain("waiting: the provider keeps refusing calls");
  });

  it("is not shown once the job has stopped, and a provider pause gives its reason", () => {
    show({ ...RUNNING, status: "paused", pause_reason: "provider_refusing", concurrency: { target: 75, in_flight: 0 } });
    expect(screen.queryByTestId("progress-concurrency")).not.toBeInTheDocument();
    expect(screen.getByTestId("progress-pause-reason")).toHaveTextContent("the model provider kept refusing calls");
  });
});

describe("Now writing", () => {
  it("moves with the count and drops a name the server has not updated while the count moved on", async () => {
    const { NowWriting } = await import("./ProgressTracker");
    const job = (completed: number, id: string): Job => ({ ...RUNNING, total: 30, completed, current: { conversation_id: id, persona: "Retiree", topic: "Fees" }, concurrency: { target: 28, in_flight: 6 } });
    const { rerender } = render(<NowWriting job={job(20, "c1")} done={20} />);
    expect(screen.getByTestId("progress-current")).toHaveTextContent("Now writing Retiree · Fees and 5 more at once (10 to go)");
    rerender(<NowWriting job={job(26, "c1")} done={26} />);
    expect(screen.getByTestId("progress-current")).toHaveTextContent("Now writing 4 conversations at once (4 to go)");
    rerender(<NowWriting job={job(27, "c2")} done={27} />);
    expect(screen.getByTestId("progress-current")).toHaveTextContent("Now writing Retiree · Fees and 2 more at once (3 to go)");
  });
});
