'use strict';
// Shared by the Node facade (node/index.js) and the wasm facade (wasm/lib/api.js), like every
// module of node/lib/: nothing here touches a native module, so one source serves both (node/
// requires it; wasm/scripts/build.mjs embeds node/lib/ into each file it generates). Rules stay
// in the Rust core.

const { parse } = require('./json.js');
const hostValues = require('./hostvalues.js');

// ----- event objects from the core's layout -----
// Per event the native side records (`Event::write_json_layout`) its kind, then per top-level
// value after `kind` its form and where it starts and ends in the batch text (UTF-16 units).

const LAYOUT = 34;
const KIND_SCOPE_START = 1;
const KIND_MARK = 3;
const FORM_ABSENT = 0;
const FORM_NULL = 1;
const FORM_STRING = 2;
const FORM_JSON = 3;
const FORM_EMPTY_ARRAY = 4;
const FORM_EMPTY_OBJECT = 5;
const FORM_STATUS_OK = 6;
const FORM_CHUNK_INDEX = 7;
const FORM_HOST = 8;
// Where each value's numbers start in an event's layout (after the kind).
const F_VERSION = 1;
const F_UUID = 4;
const F_PARENT = 7;
const F_TIMESTAMP = 10;
const F_NAME = 13;
const F_CATEGORY = 16;
const F_ATTRIBUTES = 19;
const F_PROFILE = 22;
const F_DATA = 25;
const F_SCHEMA = 28;
const F_METADATA = 31;

/**
 * Parses the structured values (form FORM_JSON) of a batch's `n` events, whose layouts start at
 * `l[at]`, in one `JSON.parse` of `[v0,v1,...]` and writes each value's index in the result over
 * its start offset in the layout, where `value` looks it up. One parse per batch instead of one
 * per value: each call's fixed cost (entry, flattening a slice, setting up the parser) was more
 * than half of what building an event object cost. Marks that `eventObject` parses whole are
 * left out. The layout is the facade's own copy, read once more by `eventObject` and dropped.
 */
function batchValues(text, l, at, n) {
  const parts = [];
  for (let o = at, last = at + n * LAYOUT; o < last; o += LAYOUT) {
    if (wholeMark(l, o)) continue;
    for (let f = o + 1; f < o + LAYOUT; f += 3) {
      if (l[f] === FORM_JSON) {
        parts.push(text.slice(l[f + 1], l[f + 2]));
        l[f + 1] = parts.length - 1;
      }
    }
  }
  return parts.length === 0 ? parts : parse(`[${parts.join(',')}]`);
}

/** Whether the event at `l[o]` is a mark with a category profile (rare): parsed whole. */
function wholeMark(l, o) {
  return l[o] === KIND_MARK && l[o + F_PROFILE] !== FORM_ABSENT;
}

/**
 * One top-level value of an event: sliced when it is a plain string, taken from `values` (see
 * `batchValues`) when structured, from the host values' table when the call handed a snapshot.
 */
function value(text, l, at, values) {
  switch (l[at]) {
    case FORM_STRING:
      return text.slice(l[at + 1] + 1, l[at + 2] - 1);
    case FORM_NULL:
      return null;
    case FORM_JSON:
      return values[l[at + 1]];
    case FORM_EMPTY_ARRAY:
      return [];
    case FORM_EMPTY_OBJECT:
      return {};
    case FORM_ABSENT:
      return undefined;
    case FORM_STATUS_OK:
      return { 'otel.status_code': 'OK' };
    case FORM_CHUNK_INDEX: // after the 19 characters of `{"llm.chunk.index":`
      return { 'llm.chunk.index': Number(text.slice(l[at + 1] + 19, l[at + 2] - 1)) };
    case FORM_HOST: // a snapshot the facade kept (hostvalues.js); its token's low 32 bits
      return hostValues.take(l[at + 1]);
    default:
      return undefined;
  }
}

/**
 * The object of the event whose layout starts at `l[o]` and whose text is `text[start, end)` —
 * the same as `JSON.parse` of that text, keys in the same order — built from the values the
 * layout locates (`JSON.parse` of whole events cost more than the rest of a delivery), its
 * structured ones from `values`, what `batchValues` gave for the batch. A mark with a category
 * profile (rare) is parsed whole.
 */
function eventObject(text, l, o, start, end, values) {
  const kind = l[o];
  if (kind === KIND_MARK) {
    if (wholeMark(l, o)) return parse(text.slice(start, end));
    // A mark's category, when it has one (every stream chunk mark does), comes after its name.
    if (l[o + F_CATEGORY] !== FORM_ABSENT) {
      return {
        kind: 'mark', atof_version: value(text, l, o + F_VERSION, values), uuid: value(text, l, o + F_UUID, values),
        parent_uuid: value(text, l, o + F_PARENT, values), timestamp: value(text, l, o + F_TIMESTAMP, values),
        name: value(text, l, o + F_NAME, values), category: value(text, l, o + F_CATEGORY, values),
        data: value(text, l, o + F_DATA, values), data_schema: value(text, l, o + F_SCHEMA, values),
        metadata: value(text, l, o + F_METADATA, values),
      };
    }
    return {
      kind: 'mark', atof_version: value(text, l, o + F_VERSION, values), uuid: value(text, l, o + F_UUID, values),
      parent_uuid: value(text, l, o + F_PARENT, values), timestamp: value(text, l, o + F_TIMESTAMP, values),
      name: value(text, l, o + F_NAME, values), data: value(text, l, o + F_DATA, values),
      data_schema: value(text, l, o + F_SCHEMA, values), metadata: value(text, l, o + F_METADATA, values),
    };
  }
  return {
    kind: 'scope', scope_category: kind === KIND_SCOPE_START ? 'start' : 'end',
    atof_version: value(text, l, o + F_VERSION, values), uuid: value(text, l, o + F_UUID, values),
    parent_uuid: value(text, l, o + F_PARENT, values), timestamp: value(text, l, o + F_TIMESTAMP, values),
    name: value(text, l, o + F_NAME, values), category: value(text, l, o + F_CATEGORY, values),
    attributes: value(text, l, o + F_ATTRIBUTES, values), category_profile: value(text, l, o + F_PROFILE, values),
    data: value(text, l, o + F_DATA, values), data_schema: value(text, l, o + F_SCHEMA, values),
    metadata: value(text, l, o + F_METADATA, values),
  };
}

// ----- delivering a batch -----

/** A delivery's event index meaning "this subscriber was removed": the facade forgets it. */
const CLOSED = 0xffffffff;

/**
 * Calls the subscribers of one batch in order. `pairs[from..to)` holds (subscriber id, event
 * index or CLOSED) pairs; `subscribers` maps ids to `{ fn, json }`. Event `i` ends at
 * `ends[endsAt + i]` in `text` and its layout starts at `l[layoutAt + i * LAYOUT]` (the Node
 * addon hands these over as separate arrays, the wasm module as one). Each event is sliced out
 * of the text or built from its layout only for a subscriber that wants it in that form, once,
 * and shared by all of them; the batch's structured values are parsed together on the first
 * object (`batchValues`), or, when the binding already gathered them (`valuesText`: the Node
 * addon copies them into one JSON array off the JS thread), by one parse of that text. A
 * subscriber that throws or whose Promise rejects is isolated and reported through `failed`.
 */
function deliverBatch(subscribers, failed, text, l, layoutAt, ends, endsAt, n, pairs, from, to, valuesText) {
  const texts = new Array(n);
  const objects = new Array(n);
  let values = null;
  for (let i = from; i < to; i += 2) {
    const id = pairs[i];
    const idx = pairs[i + 1];
    if (idx === CLOSED) {
      subscribers.delete(id);
      continue;
    }
    const sub = subscribers.get(id);
    if (sub === undefined) continue;
    try {
      let ev;
      if (sub.json) {
        ev = texts[idx];
        if (ev === undefined) ev = texts[idx] = text.slice(idx === 0 ? 0 : ends[endsAt + idx - 1], ends[endsAt + idx]);
      } else {
        ev = objects[idx];
        if (ev === undefined) {
          if (values === null) values = valuesText === undefined ? batchValues(text, l, layoutAt, n) : parse(valuesText);
          ev = objects[idx] = eventObject(text, l, layoutAt + idx * LAYOUT, idx === 0 ? 0 : ends[endsAt + idx - 1], ends[endsAt + idx], values);
        }
      }
      const r = sub.fn(ev);
      if (r !== null && typeof r === 'object' && typeof r.then === 'function') r.then(undefined, failed);
    } catch {
      failed();
    }
  }
}

module.exports = { LAYOUT, deliverBatch };
