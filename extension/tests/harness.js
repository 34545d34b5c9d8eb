// What the panel tests share: a stand-in request client and mounting panels into jsdom.
import { mount, unmount } from "svelte";
import { PanelError } from "../src/lib/client.js";

/**
 * A stand-in for the request client: answers from `handlers` (method -> (params, options)
 * => value or Promise), records every call, and lets a test push like the kernel does.
 */
export function fakeClient(handlers) {
  const calls = [];
  const listeners = new Set();
  return {
    calls,
    handlers,
    request(method, params = {}, options = {}) {
      calls.push({ method, params, options });
      const handler = handlers[method];
      if (!handler) return Promise.reject(new PanelError("InvalidRequestError", `no ${method}`));
      try {
        return Promise.resolve(handler(params, options));
      } catch (error) {
        return Promise.reject(error);
      }
    },
    onPush(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    push(topic = "changed") {
      for (const fn of listeners) fn(topic);
    },
    listenerCount: () => listeners.size,
    count: (method) => calls.filter((c) => c.method === method).length,
    last: (method) => calls.filter((c) => c.method === method).at(-1),
  };
}

let mounted = [];

/** Mount `Component` with `{client, bindings}` into a fresh element; returns the element. */
export function mountPanel(Component, client, bindings) {
  const target = document.createElement("div");
  document.body.appendChild(target);
  const component = mount(Component, { target, props: { client, bindings } });
  mounted.push({ component, target });
  return target;
}

/** Unmount the panel mounted last (as closing its view does). */
export function unmountLast() {
  const { component, target } = mounted.pop();
  unmount(component);
  target.remove();
}

/** Unmount every panel mounted so far (call in afterEach). */
export function unmountAll() {
  while (mounted.length) unmountLast();
}
