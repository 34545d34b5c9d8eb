// Requests from a panel to its kernel-side Panel: each message carries an id and the
// kernel answers with the same id; tables arrive as Arrow IPC in binary buffers.
import { tableFromIPC } from "@uwdata/flechette";

/** An error the kernel reported (its exception class name and message). */
export class PanelError extends Error {
  /**
   * @param {string} type
   * @param {string} message
   */
  constructor(type, message) {
    super(message);
    this.name = "PanelError";
    this.type = type;
  }
}

let counter = 0;
function newId() {
  counter += 1;
  const random = globalThis.crypto?.randomUUID?.() ?? String(Math.random()).slice(2);
  return `${random}-${counter}`;
}

/** @param {ArrayBuffer | DataView | Uint8Array} buffer */
function bytesOf(buffer) {
  if (buffer instanceof Uint8Array) return buffer;
  if (ArrayBuffer.isView(buffer)) {
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }
  return new Uint8Array(buffer);
}

/**
 * Replace every `{"$arrow": i}` in a reply with the rows of the Arrow table in buffer i.
 * @param {any} value
 * @param {Array<ArrayBuffer | DataView>} buffers
 * @returns {any}
 */
export function decodeTables(value, buffers) {
  if (Array.isArray(value)) return value.map((item) => decodeTables(item, buffers));
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$arrow") {
      const buffer = buffers[value.$arrow];
      if (buffer === undefined) throw new PanelError("ProtocolError", "missing Arrow buffer");
      return tableFromIPC(bytesOf(buffer)).toArray();
    }
    return Object.fromEntries(keys.map((key) => [key, decodeTables(value[key], buffers)]));
  }
  return value;
}

/**
 * @typedef {{ done: number, total: number }} Progress
 * @typedef {{ onProgress?: (p: Progress) => void, signal?: AbortSignal }} RequestOptions
 */

/**
 * Wrap an anywidget model into a request/response client.
 * @param {import("@anywidget/types").AnyModel} model
 */
export function createClient(model) {
  /** @type {Map<string, {resolve: (v: any) => void, reject: (e: Error) => void, onProgress?: (p: Progress) => void}>} */
  const pending = new Map();
  /** @type {Set<(topic: string) => void>} */
  const pushListeners = new Set();
  let closed = false;

  /**
   * @param {any} msg
   * @param {Array<ArrayBuffer | DataView>} buffers
   */
  function onMessage(msg, buffers = []) {
    if (!msg || typeof msg !== "object") return;
    if (msg.kind === "push") {
      for (const listener of pushListeners) listener(msg.topic);
      return;
    }
    const waiting = pending.get(msg.id);
    if (!waiting) return;
    if (msg.kind === "progress") {
      waiting.onProgress?.({ done: msg.done, total: msg.total });
      return;
    }
    if (msg.kind !== "response") return;
    pending.delete(msg.id);
    if (msg.ok) {
      try {
        waiting.resolve(decodeTables(msg.result, buffers));
      } catch (error) {
        waiting.reject(/** @type {Error} */ (error));
      }
    } else {
      const error = msg.error ?? {};
      waiting.reject(new PanelError(error.type ?? "Error", error.message ?? "request failed"));
    }
  }
  model.on("msg:custom", onMessage);

  return {
    /**
     * Ask the kernel to run `method`; resolves with its result, rejects with a PanelError.
     * @param {string} method
     * @param {Record<string, any>} [params]
     * @param {RequestOptions} [options]
     * @returns {Promise<any>}
     */
    request(method, params = {}, options = {}) {
      if (closed) return Promise.reject(new PanelError("Closed", "the panel was closed"));
      const id = newId();
      const reply = new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject, onProgress: options.onProgress });
      });
      options.signal?.addEventListener("abort", () => {
        if (pending.has(id)) model.send({ kind: "cancel", id });
      });
      model.send({ kind: "request", id, method, params });
      return reply;
    },
    /**
     * Call `listener(topic)` whenever the kernel pushes a change; returns the unsubscribe.
     * @param {(topic: string) => void} listener
     */
    onPush(listener) {
      pushListeners.add(listener);
      return () => pushListeners.delete(listener);
    },
    /** Stop listening; requests still waiting are rejected. */
    dispose() {
      closed = true;
      model.off("msg:custom", onMessage);
      for (const waiting of pending.values()) {
        waiting.reject(new PanelError("Closed", "the panel was closed"));
      }
      pending.clear();
      pushListeners.clear();
    },
  };
}
