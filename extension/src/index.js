// The one module anywidget loads for every PluresDB panel; the `panel` trait picks
// which component renders.
import { defineWidget } from "@anywidget/svelte";
import App from "./App.svelte";

export default defineWidget(App);
