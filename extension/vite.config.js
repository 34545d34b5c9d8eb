// One self-contained ES module for every panel: anywidget loads a single file per
// widget class and cannot follow imports of sibling chunks, so CSS is injected by the
// components and nothing is split.
import { svelte } from "@sveltejs/vite-plugin-svelte";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [svelte({ compilerOptions: { css: "injected", runes: true } })],
  build: {
    outDir: "../pluresdb_lab/static",
    emptyOutDir: true,
    lib: {
      entry: "src/index.js",
      formats: ["es"],
      fileName: () => "widget.js",
    },
    rolldownOptions: { output: { codeSplitting: false } },
    minify: true,
    sourcemap: false,
  },
  test: {
    environment: "jsdom",
    include: ["tests/**/*.test.js"],
    setupFiles: ["tests/setup.js"],
  },
  resolve: process.env.VITEST ? { conditions: ["browser"] } : undefined,
});
