// How every panel talks to its kernel. A `Loader` asks for what the panel shows: an
// answer is kept until the next good one (a failed refresh does not blank the panel) and
// why parts failed is shown until a load works. An `Actions` runs what the user asks for:
// busy while it runs, then a note of what it did or the error, then the panel refreshes.
import { coalesced } from "./refresh.svelte.js";

/** @typedef {{ type: string, message: string }} ShownError what ErrorBanner shows */

/**
 * The error the user sees for a rejected request.
 * @param {any} reason a PanelError from the client, or anything thrown
 * @returns {ShownError}
 */
export function errorOf(reason) {
  return { type: reason?.type ?? "Error", message: reason?.message ?? String(reason) };
}

export class Loader {
  /** @type {Record<string, any>} each part's latest answer; a part is absent until its first */
  data = $state.raw({});
  /** @type {ShownError[]} why parts of the latest load failed */
  errors = $state.raw([]);
  /** false until the first load has ended, answered or not */
  loaded = $state(false);

  /**
   * @param {() => Record<string, () => Promise<any>>} parts what to ask for now, by name
   *   (read at every load, so a panel can ask only for the tab in view)
   */
  constructor(parts) {
    /** Load every part at once; one load at a time (see `coalesced`). */
    this.refresh = coalesced(async () => {
      const asked = Object.entries(parts());
      const replies = await Promise.allSettled(asked.map(([, ask]) => ask()));
      const data = { ...this.data };
      /** @type {Map<string, ShownError & { parts: string[] }>} one banner per distinct error */
      const failed = new Map();
      replies.forEach((reply, i) => {
        const name = asked[i][0];
        if (reply.status === "fulfilled") data[name] = reply.value;
        // A closed view's requests are rejected with "Closed": nobody is left to tell.
        else if (reply.reason?.type !== "Closed") {
          const error = errorOf(reply.reason);
          const key = `${error.type}\n${error.message}`;
          const alike = failed.get(key) ?? { ...error, parts: [] };
          alike.parts.push(name);
          failed.set(key, alike);
        }
      });
      // With several parts asked, say which failed.
      const errors = [...failed.values()].map(({ type, message, parts }) => ({
        type,
        message: asked.length > 1 ? `${parts.join(", ")}: ${message}` : message,
      }));
      this.data = data;
      this.errors = errors;
      this.loaded = true;
    });
  }
}

export class Actions {
  /** @type {ShownError | null} why the latest action failed (until dismissed or the next one) */
  error = $state(null);
  /** @type {string | null} what the latest action did, in words */
  note = $state(null);
  /** @type {Record<string, boolean>} the actions running now, by the key they were given */
  running = $state({});

  /** @param {() => void} [after] called when any action ends, well or not (to refresh the panel) */
  constructor(after) {
    this.after = after;
  }

  /**
   * Run one action of the user's.
   * @template T
   * @param {() => Promise<T>} act
   * @param {{ key?: string, done?: (result: T) => string, cancelled?: string }} [options]
   *   `key` marks it running while it runs; `done` says what it did; `cancelled` is the note
   *   for a cancel (without it a cancel is an error like any other)
   * @returns {Promise<boolean>} whether it worked
   */
  async run(act, { key, done, cancelled } = {}) {
    this.error = null;
    this.note = null;
    if (key !== undefined) this.running[key] = true;
    try {
      const result = await act();
      if (done) this.note = done(result);
      return true;
    } catch (failure) {
      if (cancelled && /** @type {any} */ (failure)?.type === "OperationCancelled") this.note = cancelled;
      else this.error = errorOf(failure);
      return false;
    } finally {
      if (key !== undefined) delete this.running[key];
      this.after?.();
    }
  }
}
