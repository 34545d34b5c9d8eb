// The rates this panel has polled, per link: a bounded history kept in the view only.
// Each sample is what the mesh reported at that poll (its rates average the last 10 s);
// nothing is interpolated or invented between polls.

/** How many polls of each link the sparklines show. */
export const HISTORY = 60;

const KEYS = ["bytes_in_per_s", "bytes_out_per_s", "messages_in_per_s", "messages_out_per_s"];

/**
 * @typedef {{ times: number[], bytes_in_per_s: number[], bytes_out_per_s: number[],
 *             messages_in_per_s: number[], messages_out_per_s: number[] }} Series
 */

/**
 * A new history with one more sample per link in `peers`, taken at `time` (Unix seconds).
 * Links no longer listed are dropped; each link keeps its newest `limit` samples.
 * @param {Record<string, Series>} history
 * @param {Array<Record<string, any>>} peers rows of the `peers` request (each has `link`)
 * @param {number} time
 * @param {number} [limit]
 * @returns {Record<string, Series>}
 */
export function addSample(history, peers, time, limit = HISTORY) {
  /** @type {Record<string, Series>} */
  const next = {};
  for (const peer of peers) {
    const before = history[peer.link];
    /** @type {any} */
    const series = { times: [...(before?.times ?? []), time].slice(-limit) };
    for (const key of KEYS) {
      series[key] = [...(before?.[key] ?? []), peer[key] ?? null].slice(-limit);
    }
    next[peer.link] = series;
  }
  return next;
}
