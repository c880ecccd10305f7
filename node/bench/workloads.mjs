// Timing harness shared by the Baton and reference workloads: medians of repeated batches.
// @ts-check

/**
 * Runs `batch(n)` (which performs n calls) `reps` times after one warm-up, and returns the
 * median nanoseconds per call.
 * @param {(n: number) => Promise<void> | void} batch
 * @param {number} n
 * @param {number} reps
 */
export async function median(batch, n, reps = 7) {
  await batch(Math.max(1, Math.floor(n / 4)));
  /** @type {number[]} */
  const per = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    await batch(n);
    const t1 = process.hrtime.bigint();
    per.push(Number(t1 - t0) / n);
  }
  per.sort((a, b) => a - b);
  return per[Math.floor(per.length / 2)];
}

export const ARGS = { query: 'weather in Paris', limit: 3 };
export const CHUNKS = 100;
