// How numbers read in every panel: bytes in binary units, durations in ms or s.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** @param {number | null | undefined} n */
export function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  let value = Number(n);
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${UNITS[unit]}`;
}

/** @param {number | null | undefined} n */
export function count(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  return Number(n).toLocaleString("en-US");
}

/** @param {number | null | undefined} ms */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** @param {number | null | undefined} perSecond */
export function rate(perSecond, unit = "/s") {
  if (perSecond === null || perSecond === undefined || Number.isNaN(perSecond)) return "–";
  return `${perSecond < 10 ? perSecond.toFixed(1) : Math.round(perSecond)}${unit}`;
}

/** Unix seconds as local date and time. @param {number | null | undefined} t */
export function time(t) {
  if (!t) return "–";
  return new Date(t * 1000).toLocaleString();
}
