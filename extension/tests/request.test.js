import { describe, expect, it } from "vitest";
import { PanelError } from "../src/lib/client.js";
import { Job } from "../src/lib/job.svelte.js";
import { Actions, Loader } from "../src/lib/request.svelte.js";
import { fakeClient } from "./harness.js";

const fail = (type, message) => () => Promise.reject(new PanelError(type, message));

describe("Loader", () => {
  it("keeps each part's last answer through a failed load, naming the part that failed", async () => {
    let peers = () => Promise.resolve(["a"]);
    const loader = new Loader(() => ({ peers: () => peers(), logs: () => Promise.resolve([1]) }));
    expect(loader.loaded).toBe(false);
    await loader.refresh();
    expect(loader.data).toEqual({ peers: ["a"], logs: [1] });
    expect(loader.errors).toEqual([]);
    peers = fail("RemoteError", "HTTP 503");
    await loader.refresh();
    expect(loader.data.peers).toEqual(["a"]);
    expect(loader.errors).toEqual([{ type: "RemoteError", message: "peers: HTTP 503" }]);
    peers = () => Promise.resolve(["b"]);
    await loader.refresh();
    expect(loader.errors).toEqual([]);
    expect(loader.data.peers).toEqual(["b"]);
  });

  it("asks for the parts named at each load; a lone part's error is not prefixed", async () => {
    let tab = "slow";
    const loader = new Loader(() => ({ [tab]: tab === "slow" ? () => Promise.resolve(1) : fail("E", "no") }));
    await loader.refresh();
    tab = "large";
    await loader.refresh();
    expect(loader.data).toEqual({ slow: 1 });
    expect(loader.errors).toEqual([{ type: "E", message: "no" }]);
    expect(loader.loaded).toBe(true);
  });

  it("shows one banner for parts that failed alike", async () => {
    const gone = fail("RemoteError", "HTTP 503");
    const loader = new Loader(() => ({ identity: gone, peers: gone, logs: fail("E", "no") }));
    await loader.refresh();
    expect(loader.errors).toEqual([
      { type: "RemoteError", message: "identity, peers: HTTP 503" },
      { type: "E", message: "logs: no" },
    ]);
  });

  it("says nothing about requests a closed view lost", async () => {
    const loader = new Loader(() => ({ stats: fail("Closed", "the panel was closed") }));
    await loader.refresh();
    expect(loader.errors).toEqual([]);
    expect(loader.loaded).toBe(true);
  });
});

describe("Actions", () => {
  it("marks an action running, says what it did, then calls `after`", async () => {
    let afters = 0;
    const actions = new Actions(() => (afters += 1));
    let finish;
    const ran = actions.run(() => new Promise((resolve) => (finish = resolve)), {
      key: "peer-1",
      done: (n) => `${n} done`,
    });
    expect(actions.running).toEqual({ "peer-1": true });
    finish(3);
    expect(await ran).toBe(true);
    expect(actions.note).toBe("3 done");
    expect(actions.running).toEqual({});
    expect(afters).toBe(1);
  });

  it("shows a failure until the next action, and a cancel as a note only when given one", async () => {
    let afters = 0;
    const actions = new Actions(() => (afters += 1));
    expect(await actions.run(fail("MeshError", "refused"))).toBe(false);
    expect(actions.error).toEqual({ type: "MeshError", message: "refused" });
    await actions.run(fail("OperationCancelled", "stopped"), { cancelled: "Stopped: nothing changed." });
    expect(actions.error).toBeNull();
    expect(actions.note).toBe("Stopped: nothing changed.");
    await actions.run(fail("OperationCancelled", "stopped"));
    expect(actions.error).toEqual({ type: "OperationCancelled", message: "stopped" });
    expect(actions.note).toBeNull();
    expect(afters).toBe(3);
  });
});

describe("Job", () => {
  it("follows the kernel's progress and cancels through the request's signal", async () => {
    let options;
    const client = fakeClient({
      compact: (params, given) => {
        options = given;
        return new Promise((resolve, reject) =>
          given.signal.addEventListener("abort", () => reject(new PanelError("OperationCancelled", "stopped"))),
        );
      },
    });
    const job = new Job(() => client);
    const ran = job.run("Compacting", "compact", { level: 0 }, true);
    expect(job.running).toBe(true);
    expect(job.label).toBe("Compacting");
    options.onProgress({ done: 2, total: 5 });
    expect([job.done, job.total]).toEqual([2, 5]);
    job.cancel();
    await expect(ran).rejects.toThrow("stopped");
    expect(job.running).toBe(false);
    expect(client.last("compact").params).toEqual({ level: 0 });
  });
});
