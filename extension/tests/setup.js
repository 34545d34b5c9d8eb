// jsdom lacks what uPlot touches: matchMedia (read when uPlot loads, for the device pixel
// ratio) and a canvas (getContext answering null keeps jsdom quiet; Chart then draws nothing).
HTMLCanvasElement.prototype.getContext = () => null;
window.matchMedia ??= (query) => ({
  matches: false,
  media: query,
  addEventListener() {},
  removeEventListener() {},
});
