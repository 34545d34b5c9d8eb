// How a suggestion's action and an apply summary read: the profiler sends both as
// small JSON objects keyed by what they do (e.g. {"create_index": {...}}); an action
// only a person can carry out (splitting a node) says how in its "manual" entry.
import { bytes, count, duration } from "../../lib/format.js";

/** @param {{ action?: Record<string, any> }} suggestion */
export function canApply(suggestion) {
  return !suggestion.action?.manual;
}

/** @param {any} value */
function plain(value) {
  if (Array.isArray(value)) return value.map(plain).join(", ");
  if (value && typeof value === "object") {
    return Object.entries(value)
      .map(([key, item]) => `${key.replaceAll("_", " ")} ${plain(item)}`)
      .join(", ");
  }
  return String(value);
}

/** @param {{ kind: string, action: Record<string, any> }} suggestion */
export function actionText(suggestion) {
  if (suggestion.action?.manual) return `by hand: ${suggestion.action.manual}`;
  const index = suggestion.action?.create_index;
  if (index) {
    const on = [index.type, (index.fields ?? []).join(", ")].filter(Boolean).join(".");
    return `create a ${index.kind} index on ${on}`;
  }
  return plain(suggestion.action ?? suggestion.kind);
}

/**
 * What `apply` did: the index it built (as `indexes()` describes it) or the
 * compaction report.
 * @param {Record<string, any>} summary
 */
export function summaryText(summary) {
  const { index, compaction } = summary;
  if (index) {
    return (
      `created ${index.kind} index ${index.name} on ${index.type}.${(index.fields ?? []).join(", ")}: ` +
      `${count(index.entries)} entries, built in ${duration(index.build_seconds * 1000)}`
    );
  }
  if (compaction) {
    return (
      `compacted level ${compaction.level}: ${count(compaction.segments_before)} → ` +
      `${count(compaction.segments_after)} segments, ${bytes(compaction.bytes_before)} → ` +
      `${bytes(compaction.bytes_after)}, in ${duration(compaction.duration_s * 1000)}`
    );
  }
  return plain(summary);
}
