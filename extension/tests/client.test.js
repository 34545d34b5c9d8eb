import { describe, expect, it } from "vitest";
import { tableFromArrays, tableToIPC } from "@uwdata/flechette";
import { PanelError, createClient, decodeTables } from "../src/lib/client.js";

// The smallest stand-in for an anywidget model: what `send` posts is recorded and
// `deliver` plays a kernel message back to the listeners.
function fakeModel() {
  const listeners = new Map();
  const sent = [];
  return {
    sent,
    on(name, fn) {
      listeners.set(name, [...(listeners.get(name) ?? []), fn]);
    },
    off(name, fn) {
      listeners.set(name, (listeners.get(name) ?? []).filter((f) => f !== fn));
    },
    send(msg) {
      sent.push(msg);
    },
    deliver(msg, buffers = []) {
      for (const fn of listeners.get("msg:custom") ?? []) fn(msg, buffers);
    },
    listenerCount() {
      return (listeners.get("msg:custom") ?? []).length;
    },
  };
}

describe("createClient", () => {
  it("matches replies to requests by id", async () => {
    const model = fakeModel();
    const client = createClient(model);
    const first = client.request("peers", { limit: 3 });
    const second = client.request("stats");
    expect(model.sent.map((m) => m.method)).toEqual(["peers", "stats"]);
    expect(model.sent[0].params).toEqual({ limit: 3 });
    model.deliver({ kind: "response", id: model.sent[1].id, ok: true, result: { nodes: 2 } });
    model.deliver({ kind: "response", id: model.sent[0].id, ok: true, result: ["a"] });
    expect(await first).toEqual(["a"]);
    expect(await second).toEqual({ nodes: 2 });
  });

  it("rejects with the kernel's error type and message", async () => {
    const model = fakeModel();
    const client = createClient(model);
    const reply = client.request("disconnect", { peer_id: "zz" });
    model.deliver({
      kind: "response",
      id: model.sent[0].id,
      ok: false,
      error: { type: "NotFoundError", message: "no peer zz" },
    });
    await expect(reply).rejects.toMatchObject({ type: "NotFoundError", message: "no peer zz" });
  });

  it("reports progress and sends cancel on abort", async () => {
    const model = fakeModel();
    const client = createClient(model);
    const seen = [];
    const abort = new AbortController();
    const reply = client.request("compact", {}, { onProgress: (p) => seen.push(p), signal: abort.signal });
    const id = model.sent[0].id;
    model.deliver({ kind: "progress", id, done: 1, total: 4 });
    abort.abort();
    expect(model.sent[1]).toEqual({ kind: "cancel", id });
    model.deliver({ kind: "response", id, ok: false, error: { type: "OperationCancelled", message: "x" } });
    expect(seen).toEqual([{ done: 1, total: 4 }]);
    await expect(reply).rejects.toBeInstanceOf(PanelError);
  });

  it("ignores replies for unknown ids and malformed messages", async () => {
    const model = fakeModel();
    const client = createClient(model);
    const reply = client.request("stats");
    model.deliver(null);
    model.deliver("text");
    model.deliver({ kind: "response", id: "someone-else", ok: true, result: 1 });
    model.deliver({ kind: "response", id: model.sent[0].id, ok: true, result: 2 });
    expect(await reply).toBe(2);
  });

  it("calls push listeners until they unsubscribe", () => {
    const model = fakeModel();
    const client = createClient(model);
    const topics = [];
    const stop = client.onPush((t) => topics.push(t));
    model.deliver({ kind: "push", topic: "changed" });
    stop();
    model.deliver({ kind: "push", topic: "again" });
    expect(topics).toEqual(["changed"]);
  });

  it("dispose rejects waiting requests and stops listening", async () => {
    const model = fakeModel();
    const client = createClient(model);
    const reply = client.request("stats");
    client.dispose();
    expect(model.listenerCount()).toBe(0);
    await expect(reply).rejects.toMatchObject({ type: "Closed" });
    await expect(client.request("stats")).rejects.toMatchObject({ type: "Closed" });
  });
});

describe("decodeTables", () => {
  it("turns Arrow buffers into rows, wherever they sit in the result", () => {
    const ipc = tableToIPC(tableFromArrays({ id: ["a", "b"], n: [1, 2] }), { format: "stream" });
    const view = new DataView(ipc.buffer, ipc.byteOffset, ipc.byteLength);
    const result = decodeTables({ total: 2, rows: { $arrow: 0 } }, [view]);
    expect(result).toEqual({ total: 2, rows: [{ id: "a", n: 1 }, { id: "b", n: 2 }] });
  });

  it("names a missing buffer", () => {
    expect(() => decodeTables({ $arrow: 3 }, [])).toThrow(/missing Arrow buffer/);
  });
});
