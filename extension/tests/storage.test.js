import { afterEach, describe, expect, it, vi } from "vitest";
import { flushSync } from "svelte";
import { fakeClient as makeFakeClient, mountPanel, unmountAll, unmountLast } from "./harness.js";
import StorageIndexes from "../src/panels/storage/StorageIndexes.svelte";
import { PanelError } from "../src/lib/client.js";

const NOW = 1_760_000_000;
const KiB = 1024;

// Replies shaped like what pluresdb_lab.widgets.StorageIndexes sends (the backups
// Arrow table arrives already decoded into row objects by the client).
function replies() {
  const state = { segments: 3 };
  return {
    state,
    stats: () => ({
      total_bytes: 40 * KiB,
      used_bytes: 10 * KiB,
      superseded_bytes: 28 * KiB,
      free_bytes: 3 * 1024 * 1024 * 1024,
      nodes: 1234,
      keys: 7,
      levels:
        state.segments > 1
          ? [{ level: 0, segments: state.segments, bytes: 38 * KiB, rows: 3702 }]
          : [{ level: 1, segments: 1, bytes: 12 * KiB, rows: 1234 }],
      wal_bytes: 2 * KiB,
      compaction_level: state.segments > 1 ? 0 : 1,
      write_amplification: 1.125,
      space_amplification: 2.5,
      segments: state.segments,
      compactions: state.segments > 1 ? 0 : 1,
      in_memory: false,
    }),
    indexes: () => [
      {
        name: "numeric_Item_price",
        kind: "numeric",
        type: "Item",
        fields: ["price"],
        params: {},
        built: true,
        entries: 1234,
        memory_bytes: 19744,
        build_seconds: 0.0042,
        queries: 9,
        latency_p50_ms: 0.31,
        latency_p95_ms: 2.5,
      },
      {
        name: "vector_all",
        kind: "vector",
        type: null,
        fields: [],
        params: { space: "cosine", dim: 8 },
        built: false,
        entries: null,
        memory_bytes: null,
        build_seconds: null,
        queries: 0,
        latency_p50_ms: null,
        latency_p95_ms: null,
      },
    ],
    backups: () => [
      {
        id: "20251009T080000Z-aaaaaa",
        kind: "full",
        base: null,
        created: NOW,
        size: 12 * KiB,
        nodes: 1234,
        status: "complete",
        path: "/data/db-backups/20251009T080000Z-aaaaaa",
        restore_into: "/data/db-restored-20251009T080000Z-aaaaaa",
      },
      {
        id: "20251009T090000Z-bbbbbb",
        kind: "unknown",
        base: null,
        created: NOW + 3600,
        size: 512,
        nodes: 0,
        status: "incomplete",
        path: "/data/db-backups/20251009T090000Z-bbbbbb.partial",
        restore_into: "/data/db-restored-20251009T090000Z-bbbbbb",
      },
    ],
    types: () => ["Item", "Person"],
    drop_index: () => null,
    set_backup_dir: (params) => params.path,
  };
}

const fakeClient = (handlers = replies()) => makeFakeClient(handlers);

// A reply the test finishes by hand, with the progress callback and abort signal it got.
function pending() {
  const job = {};
  job.handler = (params, options) => {
    job.params = params;
    job.options = options;
    return new Promise((resolve, reject) => {
      job.resolve = resolve;
      job.reject = reject;
    });
  };
  return job;
}

function render(client, extra = {}) {
  const bindings = { refresh_s: 0, panel: "storage", title: "", backup_dir: "/data/db-backups", live_progress: true, ...extra };
  return mountPanel(StorageIndexes, client, bindings);
}

afterEach(() => {
  unmountAll();
});

const q = (root, id) => root.querySelector(`[data-testid="${id}"]`);
const text = (el) => el?.textContent.replace(/\s+/g, " ").trim();
const rows = (root, id) => [...q(root, id).querySelectorAll("tbody tr")];
const cell = (row, col) => text(row.querySelector(`[data-col="${col}"]`));

function type(input, value) {
  input.value = value;
  input.dispatchEvent(new Event("input", { bubbles: true }));
  input.dispatchEvent(new Event("change", { bubbles: true }));
  flushSync();
}

async function ready(root) {
  await vi.waitFor(() => expect(q(root, "storage-total")).not.toBeNull());
}

describe("Storage & Indexes panel", () => {
  it("shows loading, then sizes, counts and levels as measured", async () => {
    const client = fakeClient();
    const root = render(client);
    expect(q(root, "storage-loading")).not.toBeNull();
    await ready(root);
    expect(text(q(root, "storage-total"))).toBe("40.0 KiB");
    expect(text(q(root, "storage-used"))).toBe("10.0 KiB");
    expect(text(q(root, "storage-superseded"))).toBe("28.0 KiB");
    expect(text(q(root, "storage-free"))).toBe("3.00 GiB");
    expect(text(q(root, "storage-nodes"))).toBe("1,234");
    expect(text(q(root, "storage-keys"))).toBe("7");
    expect(text(q(root, "storage-amplification"))).toBe("1.13× / 2.50×");
    expect(text(q(root, "storage-segments"))).toBe("3");
    const [level] = rows(root, "levels-table");
    expect(cell(level, "level")).toBe("L0");
    expect(cell(level, "segments")).toBe("3");
    expect(cell(level, "bytes")).toBe("38.0 KiB");
    expect(cell(level, "rows")).toBe("3,702");
    const bars = [...root.querySelectorAll(".pl-usage")].map(text);
    expect(bars[0]).toMatch(/10\.0 KiB of 40\.0 KiB/);
  });

  it("lists indexes with entries, memory, build time and latencies", async () => {
    const root = render(fakeClient());
    await ready(root);
    const [numeric, vector] = rows(root, "indexes-table");
    expect(cell(numeric, "name")).toBe("numeric_Item_price");
    expect(cell(numeric, "fields")).toBe("price");
    expect(cell(numeric, "entries")).toBe("1,234");
    expect(cell(numeric, "memory_bytes")).toBe("19.3 KiB");
    expect(cell(numeric, "build_seconds")).toBe("4.20 ms");
    expect(cell(numeric, "latency_p50_ms")).toBe("310 µs");
    expect(cell(numeric, "latency_p95_ms")).toBe("2.50 ms");
    expect(cell(vector, "type")).toBe("all user types");
    expect(cell(vector, "fields")).toBe("node vectors");
    expect(cell(vector, "entries")).toBe("not built yet");
  });

  it("lists backups with kind, size, status; only complete ones can be restored", async () => {
    const root = render(fakeClient());
    await ready(root);
    expect(text(q(root, "backup-dir"))).toBe("/data/db-backups");
    const [full, partial] = rows(root, "backups-table");
    expect(cell(full, "kind")).toBe("full");
    expect(cell(full, "size")).toBe("12.0 KiB");
    expect(cell(full, "status")).toBe("complete");
    expect(cell(partial, "status")).toBe("incomplete");
    expect(partial.querySelector('[data-col="status"]').className).toContain("bad");
    expect(q(root, "restore-20251009T080000Z-aaaaaa")).not.toBeNull();
    expect(q(root, "restore-20251009T090000Z-bbbbbb")).toBeNull();
  });

  it("compacts with progress and a cancel, then shows the new segment count", async () => {
    const handlers = replies();
    const job = pending();
    handlers.compact = job.handler;
    const client = fakeClient(handlers);
    const root = render(client);
    await ready(root);
    q(root, "compact-now").click();
    await vi.waitFor(() => expect(job.params).toEqual({ level: null }));
    flushSync();
    expect(q(root, "compact-now").disabled).toBe(true);
    job.options.onProgress({ done: 1500, total: 3702 });
    flushSync();
    const bar = root.querySelector('[role="progressbar"]');
    expect(text(bar)).toMatch(/1500 \/ 3702/);
    expect([...bar.querySelectorAll("button")].map(text)).toEqual(["Cancel"]);
    handlers.state.segments = 1;
    job.resolve({ level: null, segments_before: 3, segments_after: 1, bytes_before: 38 * KiB, bytes_after: 12 * KiB, duration_s: 0.031 });
    await vi.waitFor(() => expect(text(q(root, "storage-segments"))).toBe("1"));
    expect(text(q(root, "compact-note"))).toBe("Compaction done: 3 → 1 segments, 38.0 KiB → 12.0 KiB in 31.0 ms.");
    expect(root.querySelector('[role="progressbar"]')).toBeNull();
  });

  it("cancel aborts the request, and the cancellation is said, not shown as a failure", async () => {
    const handlers = replies();
    const job = pending();
    handlers.compact = job.handler;
    const root = render(fakeClient(handlers));
    await ready(root);
    q(root, "merge-level-0").click();
    await vi.waitFor(() => expect(job.params).toEqual({ level: 0 }));
    flushSync();
    root.querySelector('[role="progressbar"] button').click();
    expect(job.options.signal.aborted).toBe(true);
    job.reject(new PanelError("OperationCancelled", "cancelled by the progress callback at 0 of 3702"));
    await vi.waitFor(() => expect(text(q(root, "compact-note"))).toMatch(/cancelled/));
    expect(root.querySelector('[role="alert"]')).toBeNull();
  });

  it("has no cancel button when the database cannot report progress (over HTTP)", async () => {
    const handlers = replies();
    const job = pending();
    handlers.backup = job.handler;
    const root = render(fakeClient(handlers), { live_progress: false });
    await ready(root);
    q(root, "backup-full").click();
    await vi.waitFor(() => expect(job.params).toEqual({ incremental: false }));
    flushSync();
    const bar = root.querySelector('[role="progressbar"]');
    expect(text(bar)).toMatch(/on the server/);
    expect(bar.querySelector("button")).toBeNull();
    job.resolve({ id: "x", kind: "full", size: 100, path: "/data/db-backups/x" });
  });

  it("shows a failed compaction's error type and message", async () => {
    const handlers = replies();
    handlers.compact = () => {
      throw new PanelError("CorruptDatabaseError", "seg-000004.arrow failed its checksum");
    };
    const root = render(fakeClient(handlers));
    await ready(root);
    q(root, "compact-now").click();
    await vi.waitFor(() => expect(root.querySelector('[role="alert"]')).not.toBeNull());
    expect(text(root.querySelector('[role="alert"]'))).toMatch(
      /CorruptDatabaseError: seg-000004\.arrow failed its checksum/,
    );
  });

  it("takes full and incremental backups and refreshes the list", async () => {
    const handlers = replies();
    handlers.backup = (params) => ({ id: "new", kind: params.incremental ? "incremental" : "full", size: 2048, path: "/p" });
    const client = fakeClient(handlers);
    const root = render(client);
    await ready(root);
    const before = client.count("backups");
    q(root, "backup-incremental").click();
    await vi.waitFor(() => expect(client.last("backup")?.params).toEqual({ incremental: true }));
    await vi.waitFor(() => expect(client.count("backups")).toBeGreaterThan(before));
    expect(text(q(root, "backup-note"))).toBe("Incremental backup new written: 2.00 KiB.");
    q(root, "backup-full").click();
    await vi.waitFor(() => expect(client.last("backup").params).toEqual({ incremental: false }));
  });

  it("offers no incremental backup before a complete one, and none for a database in memory", async () => {
    const handlers = replies();
    handlers.backups = () => [];
    const root = render(fakeClient(handlers));
    await ready(root);
    expect(q(root, "backup-incremental").disabled).toBe(true);
    expect(q(root, "backup-full").disabled).toBe(false);

    const memory = replies();
    const stats = memory.stats;
    memory.stats = () => ({ ...stats(), in_memory: true, free_bytes: 0 });
    const inMemory = render(fakeClient(memory), { backup_dir: "" });
    await ready(inMemory);
    expect(q(inMemory, "backup-full").disabled).toBe(true);
    expect(text(q(inMemory, "backup-dir"))).toBe("none set");
    expect(text(inMemory)).toMatch(/lives in memory: it has no files to back up/);
    expect(text(q(inMemory, "storage-free"))).toBe("– (in memory)");
  });

  it("sets the backup folder the user typed", async () => {
    const client = fakeClient();
    const root = render(client);
    await ready(root);
    expect(q(root, "backup-dir-input").value).toBe("/data/db-backups");
    type(q(root, "backup-dir-input"), "/mnt/backups ");
    q(root, "backup-dir-set").click();
    await vi.waitFor(() => expect(client.last("set_backup_dir")?.params).toEqual({ path: "/mnt/backups" }));
    await vi.waitFor(() => expect(text(q(root, "backup-note"))).toBe("Backups now go to /mnt/backups."));
  });

  it("restores into the folder the user names, with progress", async () => {
    const handlers = replies();
    const job = pending();
    handlers.restore = job.handler;
    const root = render(fakeClient(handlers));
    await ready(root);
    q(root, "restore-20251009T080000Z-aaaaaa").click();
    flushSync();
    expect(q(root, "restore-into").value).toBe("/data/db-restored-20251009T080000Z-aaaaaa");
    type(q(root, "restore-into"), "/data/copy");
    q(root, "restore-submit").click();
    await vi.waitFor(() => expect(job.params).toEqual({ backup_id: "20251009T080000Z-aaaaaa", into: "/data/copy" }));
    job.options.onProgress({ done: 4096, total: 12288 });
    flushSync();
    expect(text(root.querySelector('[role="progressbar"]'))).toMatch(/4096 \/ 12288/);
    job.resolve({ path: "/data/copy", backup: "20251009T080000Z-aaaaaa", nodes: 1234 });
    await vi.waitFor(() => expect(text(q(root, "backup-note"))).toMatch(/restored into \/data\/copy/));
    expect(text(q(root, "backup-note"))).toMatch(/The open database was not changed/);
    expect(q(root, "restore-form")).toBeNull();
  });

  it("creates a vector index with the parameters filled in", async () => {
    const handlers = replies();
    handlers.create_index = (params) => ({ ...params, name: "vector_Item", entries: 10, build_seconds: 0.5 });
    const client = fakeClient(handlers);
    const root = render(client);
    await ready(root);
    q(root, "index-create").click();
    await vi.waitFor(() => expect(q(root, "index-form")).not.toBeNull());
    await vi.waitFor(() => expect(root.querySelectorAll("datalist option")).toHaveLength(2));
    const kind = q(root, "index-kind");
    kind.value = "vector";
    kind.dispatchEvent(new Event("change", { bubbles: true }));
    flushSync();
    type(q(root, "index-type"), "Item");
    type(q(root, "index-fields"), "title, body");
    const space = q(root, "index-space");
    space.value = "l2";
    space.dispatchEvent(new Event("change", { bubbles: true }));
    type(q(root, "index-dim"), "64");
    q(root, "index-create-submit").click();
    await vi.waitFor(() => expect(client.count("create_index")).toBe(1));
    expect(client.last("create_index").params).toEqual({
      kind: "vector",
      name: null,
      type: "Item",
      fields: ["title", "body"],
      params: { space: "l2", dim: 64 },
    });
    await vi.waitFor(() => expect(text(q(root, "index-note"))).toBe("Index vector_Item built: 10 entries in 500.0 ms."));
  });

  it("drops an index only after the user confirms", async () => {
    const client = fakeClient();
    const root = render(client);
    await ready(root);
    q(root, "drop-numeric_Item_price").click();
    flushSync();
    expect(client.count("drop_index")).toBe(0);
    q(root, "drop-confirm-numeric_Item_price").click();
    await vi.waitFor(() => expect(client.last("drop_index")?.params).toEqual({ name: "numeric_Item_price" }));
  });

  it("shows every failed refresh request, naming which one", async () => {
    const handlers = replies();
    handlers.backups = () => {
      throw new PanelError("BackupError", "/data/db-backups is a file; backups need a folder");
    };
    const root = render(fakeClient(handlers));
    await ready(root);
    const alert = root.querySelector('[role="alert"]');
    expect(text(alert)).toBe("BackupError: backups: /data/db-backups is a file; backups need a folder");
    expect(q(root, "backups-table")).toBeNull();
  });

  it("refreshes on its interval and stops when unmounted", async () => {
    vi.useFakeTimers();
    try {
      const client = fakeClient();
      render(client, { refresh_s: 1 });
      await vi.advanceTimersByTimeAsync(10);
      expect(client.count("stats")).toBe(1);
      await vi.advanceTimersByTimeAsync(2000);
      expect(client.count("stats")).toBe(3);
      unmountLast();
      await vi.advanceTimersByTimeAsync(5000);
      expect(client.count("stats")).toBe(3);
    } finally {
      vi.useRealTimers();
    }
  });
});
