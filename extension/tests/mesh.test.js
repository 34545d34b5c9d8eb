import { afterEach, describe, expect, it, vi } from "vitest";
import { flushSync, mount, unmount } from "svelte";
import { fakeClient as makeFakeClient, mountPanel, unmountAll } from "./harness.js";
import MeshPanel from "../src/panels/mesh/MeshPanel.svelte";
import { PanelError } from "../src/lib/client.js";
import { addSample } from "../src/panels/mesh/rates.js";

const NOW = 1_760_000_000;
const URL_B = "ws://127.0.0.1:40001/pluresdb/mesh";

function peer(overrides = {}) {
  return {
    link: `out:${URL_B}`,
    peer_id: "b2c3d4e5f6a7b8c9",
    url: URL_B,
    direction: "outgoing",
    state: "connected",
    bytes_in: 287_220,
    bytes_out: 1_536,
    messages_in: 14,
    messages_out: 9,
    bytes_in_per_s: 28_722,
    bytes_out_per_s: 153.6,
    messages_in_per_s: 1.4,
    messages_out_per_s: 0.9,
    rtt_ms: 0.84,
    ops_sent: 0,
    ops_received: 300,
    last_seen: NOW,
    sync_progress: { received: 300, to_receive: 300, sent: 0, to_send: 0 },
    send_state: "streaming",
    send_buffer_bytes: 0,
    last_error: null,
    ...overrides,
  };
}

// Replies shaped like what pluresdb_lab.widgets.MeshPanel sends.
function replies() {
  const state = {
    peers: [
      peer(),
      peer({
        link: "in:0f1e2d3c4b5a6978",
        peer_id: "0f1e2d3c4b5a6978",
        url: null,
        direction: "incoming",
        state: "error",
        bytes_in: 120,
        bytes_out: 96,
        last_error: "refused by the peer: wrong mesh secret",
        send_state: "held-back",
        send_buffer_bytes: 3 * 1024 * 1024,
      }),
    ],
    snapshots: [],
  };
  return {
    state,
    identity: () => ({ peer_id: "a1b2c3d4e5f60718", public_key: "ab".repeat(32), paused: false }),
    peers: () => state.peers.map((p) => ({ ...p })),
    snapshots: () => state.snapshots,
    logs: (params) =>
      [
        { time: NOW, level: "error", event: "invalid-op", peer_id: "0f1e2d3c4b5a6978", message: "closed: bad op" },
        { time: NOW - 1, level: "warning", event: "refused", peer_id: null, message: "unknown peer" },
        { time: NOW - 2, level: "info", event: "connected", peer_id: "b2c3d4e5f6a7b8c9", message: "link up" },
      ].filter((e) => params.level !== "error" || e.level === "error"),
    connect: (params) => ({ url: params.url, peer_id: params.peer_id }),
    disconnect: (params) => {
      state.peers = state.peers.map((p) =>
        p.peer_id === params.peer_id ? { ...p, state: "disconnected", last_error: "disconnected" } : p,
      );
      return { peer_id: params.peer_id };
    },
    snapshot: () => {
      const taken = { id: "20251009T120000-abcdef", created: NOW, peer_id: "a1b2", ops: 300, bytes: 287_220 };
      state.snapshots = [taken, ...state.snapshots];
      return taken;
    },
  };
}

const fakeClient = (handlers = replies()) => makeFakeClient(handlers);

function render(client, bindings = { refresh_s: 0, panel: "mesh", title: "" }) {
  return mountPanel(MeshPanel, client, bindings);
}

afterEach(() => {
  unmountAll();
  vi.useRealTimers();
});

const q = (root, id) => root.querySelector(`[data-testid="${id}"]`);
const qa = (root, id) => [...root.querySelectorAll(`[data-testid="${id}"]`)];
const text = (el) => el?.textContent.replace(/\s+/g, " ").trim();
const row = (root, peerId) => root.querySelector(`[data-testid="peer-row"][data-peer-id="${peerId}"]`);

function type(input, value) {
  input.value = value;
  input.dispatchEvent(new Event("input", { bubbles: true }));
  flushSync();
}

async function loaded(client) {
  const root = render(client);
  await vi.waitFor(() => expect(qa(root, "peer-row")).toHaveLength(2));
  return root;
}

describe("Mesh panel", () => {
  it("shows loading, then this peer, its links with state, bytes and rates", async () => {
    const client = fakeClient();
    const root = render(client);
    expect(q(root, "loading")).not.toBeNull();
    await vi.waitFor(() => expect(qa(root, "peer-row")).toHaveLength(2));
    expect(q(root, "loading")).toBeNull();
    expect(text(q(root, "own-peer-id"))).toBe("a1b2c3d4e5f60718");
    const b = row(root, "b2c3d4e5f6a7b8c9");
    expect(q(b, "peer-state").dataset.state).toBe("connected");
    expect(q(b, "peer-state").classList.contains("connected")).toBe(true);
    expect(text(q(b, "bytes-in"))).toBe("280.5 KiB");
    expect(text(q(b, "bytes-out"))).toBe("1.50 KiB");
    expect(q(b, "bytes-in").title).toBe("287220 bytes in");
    expect(text(q(b, "bytes-rate"))).toBe("28722 B/s / 154 B/s");
    expect(text(q(b, "message-rate"))).toBe("1.4/s / 0.9/s");
    expect(text(q(b, "rtt"))).toBe("840 µs");
    const bad = row(root, "0f1e2d3c4b5a6978");
    expect(q(bad, "peer-state").dataset.state).toBe("error");
    expect(text(root.querySelector("h4"))).toBe("Peers (1 connected of 2)");
  });

  it("expands a row into every counter of the link", async () => {
    const root = await loaded(fakeClient());
    expect(q(root, "peer-details")).toBeNull();
    q(row(root, "0f1e2d3c4b5a6978"), "peer-expand").click();
    flushSync();
    const details = q(root, "peer-details");
    expect(text(q(details, "detail-peer-id"))).toBe("0f1e2d3c4b5a6978");
    expect(text(q(details, "detail-error"))).toBe("refused by the peer: wrong mesh secret");
    expect(text(q(details, "detail-sync"))).toBe("received 300 of 300, sent 0 of 0");
    expect(text(q(details, "detail-ops"))).toBe("300 / 0");
    expect(text(q(details, "detail-send"))).toBe(
      "held back: the peer is not reading, 3.00 MiB not yet read by the peer",
    );
  });

  it("keeps the polled rates per link and says they are the panel's samples", async () => {
    const client = fakeClient();
    const root = await loaded(client);
    expect(text(root)).toContain("the rates this panel polled");
    const charts = row(root, "b2c3d4e5f6a7b8c9").querySelectorAll(".pl-chart");
    expect([...charts].map((c) => c.getAttribute("aria-label"))).toEqual([
      "bytes per second in and out, as polled by this panel",
      "messages per second in and out, as polled by this panel",
    ]);
    client.handlers.state.peers[0].bytes_in_per_s = 999;
    client.push();
    await vi.waitFor(() => expect(text(q(row(root, "b2c3d4e5f6a7b8c9"), "bytes-rate"))).toMatch(/^999 B\/s/));
  });

  it("connects to the URL and peer id typed, then refreshes", async () => {
    const client = fakeClient();
    const root = await loaded(client);
    const before = client.count("peers");
    expect(q(root, "connect").disabled).toBe(true);
    type(q(root, "connect-url"), " ws://10.0.0.7:34568/pluresdb/mesh ");
    type(q(root, "connect-peer-id"), "c0ffee00c0ffee00");
    q(root, "connect").click();
    await vi.waitFor(() => expect(client.count("connect")).toBe(1));
    expect(client.calls.find((c) => c.method === "connect").params).toEqual({
      url: "ws://10.0.0.7:34568/pluresdb/mesh",
      peer_id: "c0ffee00c0ffee00",
    });
    await vi.waitFor(() => expect(client.count("peers")).toBeGreaterThan(before));
    await vi.waitFor(() => expect(q(root, "connect-url").value).toBe(""));
  });

  it("sends no peer id when none is typed, and shows a refused connect", async () => {
    const client = fakeClient();
    client.handlers.connect = () => {
      throw new PanelError("MeshError", "connect() takes a ws:// or wss:// URL, got 'http://x'");
    };
    const root = await loaded(client);
    type(q(root, "connect-url"), "http://x");
    q(root, "connect").click();
    await vi.waitFor(() => expect(root.querySelector('[role="alert"]')).not.toBeNull());
    expect(client.calls.find((c) => c.method === "connect").params).toEqual({ url: "http://x", peer_id: null });
    expect(text(root.querySelector('[role="alert"]'))).toContain("MeshError: connect() takes a ws://");
    expect(q(root, "connect-url").value).toBe("http://x");
  });

  it("disconnects a peer and shows its new state", async () => {
    const client = fakeClient();
    const root = await loaded(client);
    q(row(root, "b2c3d4e5f6a7b8c9"), "disconnect").click();
    await vi.waitFor(() =>
      expect(q(row(root, "b2c3d4e5f6a7b8c9"), "peer-state").dataset.state).toBe("disconnected"),
    );
    expect(client.calls.find((c) => c.method === "disconnect").params).toEqual({ peer_id: "b2c3d4e5f6a7b8c9" });
    expect(text(root.querySelector("h4"))).toBe("Peers (0 connected of 2)");
  });

  it("syncs with a progress bar, a cancel button and the round's result", async () => {
    const client = fakeClient();
    let finish;
    client.handlers.sync = (params, options) => {
      options.onProgress({ done: 120, total: 400 });
      return new Promise((resolve) => (finish = resolve));
    };
    const root = await loaded(client);
    q(root, "sync-now").click();
    await vi.waitFor(() => expect(root.querySelector('[role="progressbar"]')).not.toBeNull());
    const bar = root.querySelector('[role="progressbar"]');
    expect(bar.getAttribute("aria-valuenow")).toBe("120");
    expect(text(bar)).toContain("120 / 400");
    expect(q(root, "sync-now").disabled).toBe(true);
    finish({
      seconds: 0.25,
      links: [{ link: `out:${URL_B}`, peer_id: "b2c3d4e5f6a7b8c9", received: 300, to_receive: 300, sent: 100, to_send: 100 }],
    });
    await vi.waitFor(() => expect(q(root, "sync-result")).not.toBeNull());
    expect(text(q(root, "sync-result"))).toBe("Round answered by 1 link in 250.0 ms: 300 ops received, 100 sent.");
    expect(root.querySelector('[role="progressbar"]')).toBeNull();
    expect(client.calls.find((c) => c.method === "sync").params).toEqual({});
  });

  it("cancelling a sync aborts the request and shows the cancellation", async () => {
    const client = fakeClient();
    let signal;
    client.handlers.sync = (params, options) => {
      signal = options.signal;
      return new Promise((resolve, reject) =>
        signal.addEventListener("abort", () =>
          reject(new PanelError("OperationCancelled", "stopped waiting for the sync round")),
        ),
      );
    };
    const root = await loaded(client);
    q(root, "sync-now").click();
    await vi.waitFor(() => expect(root.querySelector('[role="progressbar"] button')).not.toBeNull());
    root.querySelector('[role="progressbar"] button').click();
    expect(signal.aborted).toBe(true);
    await vi.waitFor(() => expect(text(root.querySelector('[role="alert"]'))).toContain("OperationCancelled"));
    expect(root.querySelector('[role="progressbar"]')).toBeNull();
  });

  it("cannot sync without a connected peer or while paused", async () => {
    const client = fakeClient();
    client.handlers.state.peers = [peer({ state: "disconnected" })];
    const root = render(client);
    await vi.waitFor(() => expect(qa(root, "peer-row")).toHaveLength(1));
    expect(q(root, "sync-now").disabled).toBe(true);
    const paused = fakeClient();
    paused.handlers.identity = () => ({ peer_id: "a1", public_key: "ab".repeat(32), paused: true });
    const other = render(paused);
    await vi.waitFor(() => expect(q(other, "paused")).not.toBeNull());
    expect(q(other, "sync-now").disabled).toBe(true);
  });

  it("takes a snapshot and lists it", async () => {
    const client = fakeClient();
    const root = await loaded(client);
    expect(text(q(root, "snapshot-table"))).toContain("No snapshots yet.");
    q(root, "snapshot-create").click();
    await vi.waitFor(() => expect(q(root, "snapshot-table").querySelectorAll("tbody tr td[data-col]")).toHaveLength(4));
    const cells = q(root, "snapshot-table").querySelectorAll("tbody td");
    expect(text(cells[0])).toBe("20251009T120000-abcdef");
    expect(text(cells[2])).toBe("300");
    expect(text(cells[3])).toBe("280.5 KiB");
  });

  it("shows a failed snapshot (an in-memory database has no folder)", async () => {
    const client = fakeClient();
    client.handlers.snapshot = () => {
      throw new PanelError("MeshError", "an in-memory database has no folder");
    };
    const root = await loaded(client);
    q(root, "snapshot-create").click();
    await vi.waitFor(() => expect(text(root.querySelector('[role="alert"]'))).toContain("no folder"));
    root.querySelector('[role="alert"] button').click();
    flushSync();
    expect(root.querySelector('[role="alert"]')).toBeNull();
  });

  it("colours log rows by severity and filters by level", async () => {
    const client = fakeClient();
    const root = await loaded(client);
    await vi.waitFor(() => expect(qa(root, "log-row")).toHaveLength(3));
    expect(qa(root, "log-row").map((r) => r.dataset.level)).toEqual(["error", "warning", "info"]);
    expect(qa(root, "log-row").map((r) => r.className.split(" ")[0])).toEqual(["error", "warning", "info"]);
    const select = q(root, "log-level");
    select.value = "error";
    select.dispatchEvent(new Event("change", { bubbles: true }));
    await vi.waitFor(() => expect(qa(root, "log-row")).toHaveLength(1));
    expect(client.calls.filter((c) => c.method === "logs").at(-1).params).toEqual({ limit: 200, level: "error" });
  });

  it("shows a failed refresh and keeps what it had", async () => {
    const client = fakeClient();
    const root = await loaded(client);
    client.handlers.peers = () => {
      throw new PanelError("RemoteError", "HTTP 503: server going away");
    };
    client.push();
    await vi.waitFor(() => expect(text(root.querySelector('[role="alert"]'))).toContain("RemoteError"));
    expect(qa(root, "peer-row")).toHaveLength(2);
  });

  it("shows the error when the first load fails", async () => {
    const client = fakeClient();
    client.handlers.peers = () => {
      throw new PanelError("DatabaseClosedError", "the database was closed");
    };
    const root = render(client);
    await vi.waitFor(() => expect(text(root.querySelector('[role="alert"]'))).toContain("DatabaseClosedError"));
    expect(q(root, "loading")).toBeNull();
  });

  it("refreshes every refresh_s seconds while on, and stops when unmounted", async () => {
    vi.useFakeTimers();
    const client = fakeClient();
    const target = document.createElement("div");
    const component = mount(MeshPanel, { target, props: { client, bindings: { refresh_s: 1, panel: "mesh" } } });
    await vi.advanceTimersByTimeAsync(0);
    const first = client.count("peers");
    await vi.advanceTimersByTimeAsync(3000);
    expect(client.count("peers")).toBe(first + 3);
    unmount(component);
    expect(client.listenerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(3000);
    expect(client.count("peers")).toBe(first + 3);
  });
});

describe("addSample", () => {
  it("keeps the newest samples per link and drops links that went away", () => {
    let history = {};
    for (let i = 0; i < 5; i += 1) {
      history = addSample(history, [{ link: "a", bytes_in_per_s: i, bytes_out_per_s: 1 }, { link: "b" }], NOW + i, 3);
    }
    expect(history.a.times).toEqual([NOW + 2, NOW + 3, NOW + 4]);
    expect(history.a.bytes_in_per_s).toEqual([2, 3, 4]);
    expect(history.b.messages_in_per_s).toEqual([null, null, null]);
    history = addSample(history, [{ link: "b", bytes_in_per_s: 7 }], NOW + 9, 3);
    expect(Object.keys(history)).toEqual(["b"]);
    expect(history.b.bytes_in_per_s).toEqual([null, null, 7]);
  });
});
