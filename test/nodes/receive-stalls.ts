// The event loop while pushes are handled (SPEC B4a: no push holds it more than 50 ms), measured
// with monitorEventLoopDelay. On a shared machine the process itself can be descheduled: the loop
// is then late without having been held. So each late tick is also checked against the CPU time
// the process used in it and the collector's pauses: a stall of ours kept the CPU busy for it,
// beyond the collector's part.
import { monitorEventLoopDelay, performance, PerformanceObserver } from "node:perf_hooks";
import { collectGarbage } from "../support/stub";

export interface Stall {
  ms: number;
  cpuMs: number;
  gcMs: number;
}

export interface LoopReport {
  /** monitorEventLoopDelay's longest delay (ms) */
  maxMs: number;
  /** every late tick over the bound */
  stalls: Stall[];
  /** those the process spent busy (not descheduled, not the collector) */
  ours: Stall[];
}

export function watchLoop(overMs = 50): { stop(): LoopReport } {
  collectGarbage();
  const every = 5;
  const h = monitorEventLoopDelay({ resolution: every });
  h.enable();
  const gcs: Array<{ start: number; end: number }> = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ start: e.startTime, end: e.startTime + e.duration });
  });
  obs.observe({ entryTypes: ["gc"] });
  const late: Array<{ at: number; ms: number; cpuMs: number }> = [];
  let last = performance.now();
  let lastCpu = process.cpuUsage();
  const timer = setInterval(() => {
    const now = performance.now();
    const cpu = process.cpuUsage();
    const ms = now - last - every;
    if (ms > overMs) {
      late.push({ at: last, ms, cpuMs: (cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000 });
    }
    last = now;
    lastCpu = cpu;
  }, every);
  return {
    stop() {
      clearInterval(timer);
      h.disable();
      obs.disconnect();
      const stalls = late.map((s) => {
        const end = s.at + every + s.ms;
        const gcMs = gcs.reduce((n, g) => n + Math.max(0, Math.min(end, g.end) - Math.max(s.at, g.start)), 0);
        return { ms: Math.round(s.ms), cpuMs: Math.round(s.cpuMs), gcMs: Math.round(gcMs) };
      });
      // Busy: the process used (about) the whole late time; ours: beyond the collector's pauses.
      const ours = stalls.filter((s) => s.cpuMs >= 0.8 * s.ms && s.ms - s.gcMs > overMs);
      return { maxMs: h.max / 1e6, stalls, ours };
    },
  };
}
