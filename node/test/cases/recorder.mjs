// A test helper both packages' tests use: every event a run emits, in a fresh list.
// @ts-check

/** @typedef {import('../../index.mjs').AtofEvent} AtofEvent */

/**
 * Records every event into a fresh list under a unique subscriber name; `done()` flushes,
 * removes the subscriber and returns the list.
 * @param {typeof import('../../index.mjs')} baton
 */
export function recorder(baton) {
  /** @type {AtofEvent[]} */
  const events = [];
  const name = `rec-${Math.random().toString(36).slice(2)}`;
  baton.subscribe(name, (e) => { events.push(e); });
  return {
    events,
    async done() {
      await baton.flush();
      baton.deregister('subscriber', name);
      return events;
    },
  };
}
