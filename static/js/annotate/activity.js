// Active time on an item: counts while the tab is visible and the annotator did something in the
// last minute, so a tab left open over lunch does not inflate the time recorded with a judgment.

export const IDLE_AFTER_MS = 60_000;
const TICK_MS = 1_000;

export class ActiveTimer {
  constructor({ now = () => performance.now(), idleAfterMs = IDLE_AFTER_MS } = {}) {
    this.now = now;
    this.idleAfterMs = idleAfterMs;
    this.activeMs = 0;
    this.lastTick = now();
    this.lastActivity = now();
    this.interval = null;
    this.onActivity = () => {
      this.tick();
      this.lastActivity = this.now();
    };
    this.onVisibility = () => {
      // Close the visible stretch before the tab hides; start a fresh one when it comes back.
      this.tick();
      if (document.visibilityState === "visible") this.lastActivity = this.now();
    };
  }

  start() {
    for (const type of ["keydown", "pointerdown", "pointermove", "wheel", "scroll", "input", "focusin"]) {
      window.addEventListener(type, this.onActivity, { passive: true, capture: true });
    }
    document.addEventListener("visibilitychange", this.onVisibility);
    this.interval = window.setInterval(() => this.tick(), TICK_MS);
  }

  tick() {
    const now = this.now();
    const visible = document.visibilityState === "visible";
    // Only the part of the elapsed stretch that falls inside the activity window counts.
    const activeUntil = Math.min(now, this.lastActivity + this.idleAfterMs);
    if (visible && activeUntil > this.lastTick) this.activeMs += activeUntil - this.lastTick;
    this.lastTick = now;
  }

  reset(initialMs = 0) {
    this.activeMs = initialMs;
    this.lastTick = this.now();
    this.lastActivity = this.now();
  }

  get idleMs() {
    return this.now() - this.lastActivity;
  }

  get elapsedMs() {
    this.tick();
    return Math.round(this.activeMs);
  }
}
