import { afterEach, describe, expect, it, vi } from "vitest";
import { flushSync } from "svelte";
import { fakeClient as makeFakeClient, mountPanel, unmountAll, unmountLast } from "./harness.js";
import Profiling from "../src/panels/profiling/Profiling.svelte";
import { PanelError } from "../src/lib/client.js";
import { series, totals } from "../src/panels/profiling/trends.js";
import { actionText, canApply, summaryText } from "../src/panels/profiling/suggestions.js";

const NOW = 1_760_000_000;

// Replies shaped like what pluresdb_lab.widgets.Profiling sends (Arrow tables arrive
// already decoded into row objects by the client).
function replies() {
  const state = { threshold: 100 };
  return {
    slow_ops: () => [
      { op: "query", duration_ms: 341.5, time: NOW, detail: '{"type": "airport", "filter": {...}}' },
      { op: "get", duration_ms: 120.25, time: NOW - 5, detail: "airport:LHR" },
    ],
    threshold: () => ({ slow_threshold_ms: state.threshold }),
    set_threshold: (params) => {
      state.threshold = params.ms;
      return { slow_threshold_ms: state.threshold };
    },
    large_nodes: () => [{ id: "doc:big", type: "doc", bytes: 3 * 1024 * 1024, reads: 7, writes: 2 }],
    top_talkers: () => [
      { peer_id: "peer-aaa", bytes_in: 2048, bytes_out: 512, messages_in: 12, messages_out: 4 },
    ],
    suggestions: () => [
      {
        id: "index:airport.elevation",
        kind: "create_index",
        priority: "high",
        reason: "12 slow queries (p50 340 ms) filter on airport.elevation, which has no index",
        action: { create_index: { kind: "numeric", type: "airport", fields: ["elevation"] } },
      },
      {
        id: "split:doc:big",
        kind: "split_node",
        priority: "low",
        reason: "doc:big holds 3.0 MiB",
        action: {
          split_node: { id: "doc:big", type: "doc", bytes: 3 * 1024 * 1024 },
          manual: "move parts of the node into nodes of their own",
        },
      },
    ],
    trends: () => [
      { time: NOW - 3, ops: 40, ops_per_s: 40, p50_ms: 1.5, p95_ms: 9, p99_ms: 12 },
      { time: NOW, ops: 10, ops_per_s: 10, p50_ms: 2, p95_ms: 30, p99_ms: 55 },
    ],
    dismiss: () => null,
    reset: () => null,
  };
}

const fakeClient = (handlers = replies()) => makeFakeClient(handlers);

function render(client, bindings = { refresh_s: 0, panel: "profiling", title: "" }) {
  return mountPanel(Profiling, client, bindings);
}

afterEach(() => {
  unmountAll();
  vi.useRealTimers();
});

// Replies resolve on later ticks; a busy machine may take a while to render them.
const until = (check) => vi.waitFor(check, { timeout: 5000 });
const q = (root, id) => root.querySelector(`[data-testid="${id}"]`);
const qa = (root, id) => [...root.querySelectorAll(`[data-testid="${id}"]`)];
const text = (el) => el?.textContent.replace(/\s+/g, " ").trim();

async function selectTab(root, label) {
  const tab = [...root.querySelectorAll('[role="tab"]')].find((t) => t.textContent === label);
  tab.click();
  flushSync();
}

describe("Profiling panel", () => {
  it("shows loading, then the slow operations and the threshold", async () => {
    const client = fakeClient();
    const root = render(client);
    expect(q(root, "loading")).not.toBeNull();
    await until(() => expect(q(root, "slow-ops").querySelectorAll("tbody tr")).toHaveLength(2));
    const first = q(root, "slow-ops").querySelector("tbody tr");
    expect(text(first.querySelector('[data-col="op"]'))).toBe("query");
    expect(text(first.querySelector('[data-col="duration_ms"]'))).toBe("341.5 ms");
    expect(q(root, "threshold-input").value).toBe("100");
    expect(text(q(root, "slow-count"))).toBe("2 slow operations");
    expect(client.calls.find((c) => c.method === "slow_ops").params).toEqual({ limit: 200 });
  });

  it("sets the threshold the user typed", async () => {
    const client = fakeClient();
    const root = render(client);
    await until(() => expect(q(root, "threshold-input").value).toBe("100"));
    const input = q(root, "threshold-input");
    input.value = "25.5";
    input.dispatchEvent(new Event("input", { bubbles: true }));
    flushSync();
    q(root, "threshold-set").click();
    await until(() => expect(client.count("set_threshold")).toBe(1));
    expect(client.calls.find((c) => c.method === "set_threshold").params).toEqual({ ms: 25.5 });
    await until(() => expect(q(root, "threshold-input").value).toBe("25.5"));
  });

  it("refuses a negative threshold before asking the kernel", async () => {
    const client = fakeClient();
    const root = render(client);
    await until(() => expect(q(root, "threshold-input").value).toBe("100"));
    const input = q(root, "threshold-input");
    input.value = "-3";
    input.dispatchEvent(new Event("input", { bubbles: true }));
    flushSync();
    expect(q(root, "threshold-set").disabled).toBe(true);
    expect(client.count("set_threshold")).toBe(0);
  });

  it("shows large nodes and top talkers with their figures", async () => {
    const client = fakeClient();
    const root = render(client);
    await until(() => expect(q(root, "slow-ops")).not.toBeNull());
    await selectTab(root, "Large nodes");
    await until(() => expect(q(root, "large-nodes")).not.toBeNull());
    const node = q(root, "large-nodes").querySelector("tbody tr");
    expect(text(node.querySelector('[data-col="id"]'))).toBe("doc:big");
    expect(text(node.querySelector('[data-col="bytes"]'))).toBe("3.00 MiB");
    expect(text(node.querySelector('[data-col="reads"]'))).toBe("7");
    await selectTab(root, "Top talkers");
    await until(() => expect(q(root, "top-talkers")).not.toBeNull());
    const peer = q(root, "top-talkers").querySelector("tbody tr");
    expect(text(peer.querySelector('[data-col="peer_id"]'))).toBe("peer-aaa");
    expect(text(peer.querySelector('[data-col="bytes_in"]'))).toBe("2.00 KiB");
    expect(text(peer.querySelector('[data-col="messages_out"]'))).toBe("4");
  });

  it("says so when no peer is connected", async () => {
    const handlers = { ...replies(), top_talkers: () => [] };
    const root = render(fakeClient(handlers));
    await until(() => expect(q(root, "slow-ops")).not.toBeNull());
    await selectTab(root, "Top talkers");
    await until(() => expect(text(q(root, "top-talkers"))).toMatch(/No peer links/));
  });

  it("lists suggestions; apply sends the id, shows it running, then what was done", async () => {
    let finish;
    const handlers = {
      ...replies(),
      apply: () =>
        new Promise((resolve) => {
          finish = resolve;
        }),
    };
    const client = fakeClient(handlers);
    const root = render(client);
    await until(() => expect(q(root, "slow-ops")).not.toBeNull());
    await selectTab(root, "Suggestions");
    await until(() => expect(qa(root, "suggestion-row")).toHaveLength(2));
    const [index, split] = qa(root, "suggestion-row");
    expect(text(q(index, "suggestion-priority"))).toBe("high");
    expect(text(q(index, "suggestion-reason"))).toMatch(/12 slow queries/);
    expect(text(index)).toMatch(/create a numeric index on airport\.elevation/);
    expect(q(split, "suggestion-apply")).toBeNull();
    expect(text(split)).toMatch(/by hand: move parts of the node/);

    q(index, "suggestion-apply").click();
    flushSync();
    expect(client.calls.at(-1).method).toBe("apply");
    expect(client.calls.at(-1).params).toEqual({ suggestion_id: "index:airport.elevation" });
    expect(text(q(root, "applying"))).toBe("Applying: create a numeric index on airport.elevation…");
    expect(q(index, "suggestion-apply").disabled).toBe(true);

    const before = client.count("suggestions");
    finish({
      applied: "index:airport.elevation",
      kind: "create_index",
      index: {
        kind: "numeric",
        name: "numeric_airport_elevation",
        type: "airport",
        fields: ["elevation"],
        entries: 500,
        build_seconds: 0.0125,
      },
    });
    await until(() => expect(qa(root, "applied-row")).toHaveLength(1));
    expect(text(q(root, "applied-row"))).toMatch(
      /created numeric index numeric_airport_elevation on airport\.elevation: 500 entries, built in 12\.5 ms/,
    );
    expect(q(root, "applying")).toBeNull();
    expect(client.count("suggestions")).toBe(before + 1);
  });

  it("shows why an apply failed", async () => {
    const handlers = {
      ...replies(),
      apply: () => {
        throw new PanelError("NotFoundError", "there is no suggestion 'index:airport.elevation'");
      },
    };
    const root = render(fakeClient(handlers));
    await until(() => expect(q(root, "slow-ops")).not.toBeNull());
    await selectTab(root, "Suggestions");
    await until(() => expect(qa(root, "suggestion-apply")).toHaveLength(1));
    q(root, "suggestion-apply").click();
    await until(() => expect(root.querySelector('[role="alert"]')).not.toBeNull());
    expect(text(root.querySelector('[role="alert"]'))).toMatch(/^NotFoundError: there is no suggestion/);
    expect(q(root, "applying")).toBeNull();
    expect(qa(root, "applied-row")).toHaveLength(0);
  });

  it("dismiss sends the id and refreshes the list", async () => {
    const client = fakeClient();
    const root = render(client);
    await until(() => expect(q(root, "slow-ops")).not.toBeNull());
    await selectTab(root, "Suggestions");
    await until(() => expect(qa(root, "suggestion-row")).toHaveLength(2));
    const before = client.count("suggestions");
    client.handlers.suggestions = () => replies().suggestions().slice(1);
    q(qa(root, "suggestion-row")[0], "suggestion-dismiss").click();
    await until(() => expect(qa(root, "suggestion-row")).toHaveLength(1));
    expect(client.calls.find((c) => c.method === "dismiss").params).toEqual({
      suggestion_id: "index:airport.elevation",
    });
    expect(client.count("suggestions")).toBe(before + 1);
  });

  it("shows the kernel's error for a failed request, and clears it once a load works", async () => {
    const handlers = replies();
    const good = handlers.slow_ops;
    handlers.slow_ops = () => {
      throw new PanelError("DatabaseClosedError", "the database is closed");
    };
    const client = fakeClient(handlers);
    const root = render(client);
    await until(() => expect(root.querySelector('[role="alert"]')).not.toBeNull());
    expect(text(root.querySelector('[role="alert"]'))).toBe(
      "DatabaseClosedError: the database is closed",
    );
    handlers.slow_ops = good;
    [...root.querySelectorAll("button")].find((b) => b.textContent === "Refresh now").click();
    await until(() => expect(root.querySelector('[role="alert"]')).toBeNull());
    expect(q(root, "slow-ops").querySelectorAll("tbody tr")).toHaveLength(2);
  });

  it("shows trend totals and asks for the chosen window", async () => {
    const client = fakeClient();
    const root = render(client);
    await until(() => expect(q(root, "slow-ops")).not.toBeNull());
    await selectTab(root, "Trends");
    await until(() => expect(q(root, "trend-ops")).not.toBeNull());
    expect(text(q(root, "trend-ops"))).toBe("50");
    expect(text(q(root, "trend-peak"))).toBe("40 ops/s");
    expect(text(q(root, "trend-worst-p99"))).toBe("55.0 ms");
    expect(root.querySelector('[aria-label="latency percentiles"]')).not.toBeNull();
    expect(client.calls.find((c) => c.method === "trends").params).toEqual({ window_s: 300 });
    const select = q(root, "trend-window");
    select.value = "3600";
    select.dispatchEvent(new Event("change", { bubbles: true }));
    await until(() =>
      expect(client.calls.filter((c) => c.method === "trends").at(-1).params).toEqual({ window_s: 3600 }),
    );
  });

  it("reset asks the kernel and reloads", async () => {
    const client = fakeClient();
    const root = render(client);
    await until(() => expect(client.count("slow_ops")).toBe(1));
    q(root, "reset").click();
    await until(() => expect(client.count("slow_ops")).toBe(2));
    expect(client.count("reset")).toBe(1);
  });

  it("refreshes on a push and every refresh_s, and stops when closed", async () => {
    vi.useFakeTimers();
    const client = fakeClient();
    render(client, { refresh_s: 2, panel: "profiling", title: "" });
    await vi.advanceTimersByTimeAsync(0);
    expect(client.count("slow_ops")).toBe(1);
    await vi.advanceTimersByTimeAsync(4000);
    expect(client.count("slow_ops")).toBe(3);
    client.push();
    await vi.advanceTimersByTimeAsync(0);
    expect(client.count("slow_ops")).toBe(4);
    unmountLast();
    expect(client.listenerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(client.count("slow_ops")).toBe(4);
  });
});

describe("trend series", () => {
  it("fills quiet seconds with 0 ops/s and latency gaps", () => {
    const out = series([
      { time: 12, ops: 1, ops_per_s: 1, p50_ms: 2, p95_ms: 3, p99_ms: 4 },
      { time: 10, ops: 5, ops_per_s: 5, p50_ms: 1, p95_ms: 2, p99_ms: 3 },
    ]);
    expect(out.times).toEqual([10, 11, 12]);
    expect(out.rate).toEqual([5, 0, 1]);
    expect(out.p99).toEqual([3, null, 4]);
    expect(series([]).times).toEqual([]);
    expect(totals([])).toEqual({ ops: 0, peak: 0, worst: 0 });
  });
});

describe("suggestion text", () => {
  it("reads actions and summaries in words", () => {
    expect(canApply({ kind: "compact", action: { compact: { level: 0 } } })).toBe(true);
    expect(canApply({ kind: "split_node", action: { split_node: {}, manual: "split it" } })).toBe(false);
    expect(actionText({ kind: "compact", action: { compact: { level: 0 } } })).toBe("compact level 0");
    const compaction = {
      level: 0,
      segments_before: 5,
      segments_after: 1,
      bytes_before: 4096,
      bytes_after: 2048,
      duration_s: 0.25,
    };
    expect(summaryText({ applied: "compact:level0", kind: "compact", compaction })).toBe(
      "compacted level 0: 5 → 1 segments, 4.00 KiB → 2.00 KiB, in 250.0 ms",
    );
  });
});
