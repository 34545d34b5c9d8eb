// One long request of a panel (a compaction, a backup, a sync round…): its progress for
// a ProgressBar, and a cancel that reaches the kernel. One job runs at a time per Job.

export class Job {
  running = $state(false);
  label = $state("");
  done = $state(0);
  total = $state(0);
  cancellable = $state(false);
  /** @type {AbortController | null} */
  #controller = null;

  /**
   * @param {() => { request: (method: string, params?: any, options?: any) => Promise<any> }} client
   *   the panel's request client (a function, as component props are read lazily)
   */
  constructor(client) {
    this.client = client;
  }

  /**
   * Run `method` with progress; resolves with its result, rejects with the kernel's error.
   * @param {string} label what the progress bar says
   * @param {string} method
   * @param {Record<string, any>} params
   * @param {boolean} cancellable whether the kernel can stop this work midway
   */
  async run(label, method, params, cancellable) {
    this.#controller = new AbortController();
    this.label = label;
    this.done = 0;
    this.total = 0;
    this.cancellable = cancellable;
    this.running = true;
    try {
      return await this.client().request(method, params, {
        signal: this.#controller.signal,
        /** @param {{ done: number, total: number }} p */
        onProgress: (p) => {
          this.done = p.done;
          this.total = p.total;
        },
      });
    } finally {
      this.running = false;
      this.#controller = null;
    }
  }

  cancel() {
    this.#controller?.abort();
  }
}
