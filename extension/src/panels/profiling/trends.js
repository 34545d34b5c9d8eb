// Trend points come one per second that had operations; the charts need every second
// of the span, so quiet seconds become 0 ops/s and a gap in the latency lines.

/**
 * @typedef {{ time: number, ops: number, ops_per_s: number, p50_ms: number, p95_ms: number, p99_ms: number }} TrendPoint
 */

/**
 * Series over every second from the first point to the last.
 * @param {TrendPoint[]} points
 */
export function series(points) {
  const sorted = [...points].sort((a, b) => a.time - b.time);
  /** @type {{ times: number[], rate: number[], p50: (number | null)[], p95: (number | null)[], p99: (number | null)[] }} */
  const out = { times: [], rate: [], p50: [], p95: [], p99: [] };
  if (sorted.length === 0) return out;
  const byTime = new Map(sorted.map((p) => [Math.floor(p.time), p]));
  const first = Math.floor(sorted[0].time);
  const last = Math.floor(sorted[sorted.length - 1].time);
  for (let t = first; t <= last; t += 1) {
    const point = byTime.get(t);
    out.times.push(t);
    out.rate.push(point ? point.ops_per_s : 0);
    out.p50.push(point ? point.p50_ms : null);
    out.p95.push(point ? point.p95_ms : null);
    out.p99.push(point ? point.p99_ms : null);
  }
  return out;
}

/**
 * Totals over the window: operations, the busiest second, the worst p99.
 * @param {TrendPoint[]} points
 */
export function totals(points) {
  let ops = 0;
  let peak = 0;
  let worst = 0;
  for (const p of points) {
    ops += p.ops;
    peak = Math.max(peak, p.ops_per_s);
    worst = Math.max(worst, p.p99_ms ?? 0);
  }
  return { ops, peak, worst };
}
