// Live refresh for a panel: on mount, on every kernel push, and every `refresh_s`
// seconds when the user has auto-refresh on; timers and listeners end with the view.
import { untrack } from "svelte";

/**
 * @param {() => number} interval seconds between refreshes (0 or less: off)
 * @param {{ onPush: (listener: (topic: string) => void) => () => void }} client
 * @param {() => void | Promise<void>} refresh
 */
export function autoRefresh(interval, client, refresh) {
  $effect(() => client.onPush(() => untrack(refresh)));
  $effect(() => {
    const seconds = interval();
    untrack(refresh);
    if (!(seconds > 0)) return;
    const timer = setInterval(() => untrack(refresh), seconds * 1000);
    return () => clearInterval(timer);
  });
}
