// Which component renders each panel name (the Python class sets the `panel` trait).
import MeshPanel from "./panels/MeshPanel.svelte";
import Profiling from "./panels/Profiling.svelte";
import StorageIndexes from "./panels/StorageIndexes.svelte";

/** @type {Record<string, import("svelte").Component<any>>} */
export const PANELS = {
  mesh: MeshPanel,
  storage: StorageIndexes,
  profiling: Profiling,
};
