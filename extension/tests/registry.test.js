import { afterEach, describe, expect, it, vi } from "vitest";
import { flushSync, mount, unmount } from "svelte";
import App from "../src/App.svelte";
import { PANELS } from "../src/panels/index.js";
import source from "../src/panels/index.js?raw";
import { fakeClient, mountPanel, unmountAll } from "./harness.js";

const NAMES = Object.keys(PANELS);
// What every panel's Python class syncs (the Storage panel reads two traits more).
const bindings = (panel) => ({ panel, title: "", refresh_s: 0, backup_dir: "", live_progress: true });
const text = (el) => el?.textContent.replace(/\s+/g, " ").trim();

afterEach(() => unmountAll());

describe("panel registry", () => {
  it("keeps the form tests/widgets/test_registry.py reads", () => {
    const block = source.match(/^export const PANELS = \{\n([\s\S]*?)^\};$/m);
    const lines = block[1].split("\n").filter((line) => line !== "");
    expect(lines.map((line) => line.match(/^ {2}([a-z][a-z0-9_]*): [A-Z][A-Za-z0-9]*,$/)?.[1])).toEqual(NAMES);
  });

  it.each(NAMES)("%s mounts, and shows the kernel's refusal", async (name) => {
    const root = mountPanel(PANELS[name], fakeClient({}), bindings(name));
    await vi.waitFor(() => expect(text(root.querySelector('[role="alert"]'))).toMatch(/^InvalidRequestError: /));
  });

  it.each(NAMES)("App renders %s by its name", (name) => {
    const target = document.createElement("div");
    const model = { on() {}, off() {}, send() {} };
    const app = mount(App, { target, props: { model, bindings: bindings(name) } });
    flushSync();
    expect(target.querySelector(".pl-root").dataset.panel).toBe(name);
    expect(target.querySelector('[role="alert"]')).toBeNull();
    expect(target.querySelector(".pl-root").children.length).toBeGreaterThan(0);
    unmount(app);
  });

  it("App says so for a name it does not know", () => {
    const target = document.createElement("div");
    const app = mount(App, { target, props: { model: { on() {}, off() {}, send() {} }, bindings: bindings("nope") } });
    flushSync();
    expect(text(target.querySelector('[role="alert"]'))).toBe('UnknownPanel: no panel named "nope"');
    unmount(app);
  });
});
