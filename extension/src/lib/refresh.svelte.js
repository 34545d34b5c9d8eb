// Live refresh for a panel: on mount, on every kernel push, and every `refresh_s`
// seconds when the user has auto-refresh on; timers and listeners end with the view.
import { untrack } from "svelte";

/**
 * @param {() => number} interval seconds between refreshes (0 or less: off)
 * @param {() => { onPush: (listener: (topic: string) => void) => () => void }} client the
 *   panel's request client (a function, as component props are read lazily)
 * @param {() => void | Promise<void>} refresh
 */
export function autoRefresh(interval, client, refresh) {
  $effect(() => client().onPush(() => untrack(refresh)));
  $effect(() => {
    const seconds = interval();
    untrack(refresh);
    if (!(seconds > 0)) return;
    const timer = setInterval(() => untrack(refresh), seconds * 1000);
    return () => clearInterval(timer);
  });
}

/**
 * One load at a time: a call while `load` runs is remembered and runs once, right after
 * (so a burst of pushes and timer ticks costs at most one extra request round).
 * @param {() => Promise<void>} load
 * @returns {() => Promise<void>}
 */
export function coalesced(load) {
  let running = false;
  let again = false;
  return async function refresh() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await load();
      } while (again);
    } finally {
      running = false;
    }
  };
}
