import { describe, expect, it } from "vitest";
import { coalesced } from "../src/lib/refresh.svelte.js";

describe("coalesced", () => {
  it("runs one load at a time and once more for calls made meanwhile", async () => {
    const releases = [];
    let runs = 0;
    const refresh = coalesced(() => {
      runs += 1;
      return new Promise((resolve) => releases.push(resolve));
    });
    const first = refresh();
    refresh();
    refresh();
    expect(runs).toBe(1);
    releases.shift()();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(runs).toBe(2);
    releases.shift()();
    await first;
    expect(runs).toBe(2);
    const third = refresh();
    expect(runs).toBe(3);
    releases.shift()();
    await third;
  });

  it("recovers after a failed load", async () => {
    let runs = 0;
    const refresh = coalesced(async () => {
      runs += 1;
      if (runs === 1) throw new Error("boom");
    });
    await expect(refresh()).rejects.toThrow("boom");
    await refresh();
    expect(runs).toBe(2);
  });
});
