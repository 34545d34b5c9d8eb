// The panel registry: which component renders each panel name. The name is the `panel`
// trait of the panel's Python class (pluresdb_lab.widgets.PANELS). Each panel lives in
// the folder of its name, its top component named like its Python class; adding one is
// that folder, an import and an entry here, and its class in PANELS.
//
// tests/widgets/test_registry.py reads this file as text to check both sides agree, so
// keep the strict form: `import Component from "./name/Component.svelte";`, and in PANELS
// one `  name: Component,` per line (name in lower case), nothing else until `};`.
import MeshPanel from "./mesh/MeshPanel.svelte";
import Profiling from "./profiling/Profiling.svelte";
import StorageIndexes from "./storage/StorageIndexes.svelte";

/** @type {Record<string, import("svelte").Component<any>>} */
export const PANELS = {
  mesh: MeshPanel,
  storage: StorageIndexes,
  profiling: Profiling,
};
