// A test helper for the memory tests (memory.test.mjs, entered.test.mjs): does a loop keep
// something per iteration, judged from the process's RSS?
// @ts-check
import assert from 'node:assert/strict';

/**
 * One RSS difference cannot tell a leak from a plateau still settling: what is in flight at
 * once (queued events, host-value snapshots, V8's heap sizing, the allocator's arenas) grows to
 * a level whose height and arrival vary with the machine's speed (a fresh-clone CI once saw
 * 43 MiB of settling where this machine sees 25). A leak grows in every window, in steps, as
 * V8 and the allocator take memory in chunks; settling happens once. So `run` goes once to warm
 * up, then `windows` more times, and the growth summed over those, less the largest window,
 * must stay under `limitMiB`. Returns the growth per window (MiB), for messages.
 * @param {() => unknown} run one window of the loop under test
 * @param {{ windows?: number, limitMiB: number, gc?: () => void, what: string }} options
 */
export async function assertNoGrowthPerWindow(run, { windows = 3, limitMiB, gc, what }) {
  await run();
  /** @type {number[]} */
  const grown = [];
  for (let w = 0; w < windows; w++) {
    gc?.();
    const rss = process.memoryUsage().rss;
    await run();
    grown.push((process.memoryUsage().rss - rss) / 2 ** 20);
  }
  const rest = grown.reduce((a, b) => a + b, 0) - Math.max(...grown);
  const shown = grown.map((g) => g.toFixed(0)).join(', ');
  if (process.env.BATON_TEST_VERBOSE) console.log(`RSS growth per window, ${what}: ${shown} MiB`);
  assert.ok(rest < limitMiB, `RSS grew window after window, ${what}: ${shown} MiB`);
  return grown;
}
