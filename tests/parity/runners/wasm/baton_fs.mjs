// The wasm package as the parity runner sees it: the same API, except that `plugins.initialize`
// turns the observability component's *file* sinks into export sinks (plugins.registerSink)
// whose callbacks write those files with node:fs. wasm32-unknown-unknown has no file system,
// so this is how a Node host gets the files — and it lets the file-writing scenarios run
// unchanged. Sinks that are not well-formed file sinks are left as they are, so the core still
// reports their diagnostics.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = pathToFileURL(path.join(here, '..', '..', '..', '..', 'wasm', 'dist', 'index.mjs')).href;
const baton = await import(pkg);

export * from '../../../../wasm/dist/index.mjs';

let nextSink = 1;

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const plainName = (f) => typeof f === 'string' && f !== '' && !f.includes('/') && !f.includes('\\');

/** A registered sink that appends ATOF lines to `dir/filename`; `open()` creates (or truncates) it. */
function atofFileSink(dir, filename, mode) {
  const name = `parity.fs.${nextSink++}`;
  const file = path.join(dir, filename);
  baton.plugins.registerSink(name, { atof: (line) => fs.appendFileSync(file, `${line}\n`) });
  const open = () => {
    fs.mkdirSync(dir, { recursive: true });
    if (mode === 'overwrite') fs.writeFileSync(file, '');
    else fs.appendFileSync(file, '');
  };
  return { name, open };
}

/** A file sink section `{output_directory, filename?, mode?}` as an export sink, or null if malformed. */
function fromFileSink(obj) {
  const dir = obj.output_directory;
  const filename = obj.filename === undefined ? 'events.jsonl' : obj.filename;
  const mode = obj.mode === undefined ? 'append' : obj.mode;
  if (typeof dir !== 'string' || !plainName(filename) || (mode !== 'append' && mode !== 'overwrite')) return null;
  return atofFileSink(dir, filename, mode);
}

/** Rewrites one observability config; returns the files to open once it is installed. */
function rewrite(config) {
  const opens = [];
  const atof = config.atof;
  if (isObj(atof)) {
    const sinks = Array.isArray(atof.sinks) ? [...atof.sinks] : atof.sinks;
    if ('output_directory' in atof || 'filename' in atof) {
      const s = fromFileSink(atof);
      if (s !== null) {
        delete atof.output_directory;
        delete atof.filename;
        delete atof.mode;
        opens.push(s.open);
        // The legacy single-file sink comes first, as in the core.
        atof.sinks = [{ type: 'callback', sink: s.name }, ...(Array.isArray(sinks) ? sinks : [])];
      }
    }
    if (Array.isArray(atof.sinks)) {
      atof.sinks = atof.sinks.map((sink) => {
        if (!isObj(sink) || sink.type !== 'file' || Object.keys(sink).some((k) => !['type', 'output_directory', 'filename', 'mode'].includes(k))) return sink;
        const s = fromFileSink(sink);
        if (s === null) return sink;
        opens.push(s.open);
        return { type: 'callback', sink: s.name };
      });
    }
  }
  const atif = config.atif;
  if (isObj(atif) && atif.sink === undefined && (atif.output_directory === undefined || typeof atif.output_directory === 'string')) {
    const dir = atif.output_directory === undefined ? '.' : atif.output_directory;
    const name = `parity.fs.${nextSink++}`;
    baton.plugins.registerSink(name, {
      atif: (doc, info) => {
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(path.join(dir, info.fileName), `${JSON.stringify(doc, null, 2)}\n`);
      },
    });
    delete atif.output_directory;
    atif.sink = name;
  }
  return opens;
}

export const plugins = Object.freeze({
  ...baton.plugins,
  initialize(config) {
    const doc = structuredClone(config);
    const opens = [];
    if (isObj(doc) && Array.isArray(doc.components)) {
      for (const c of doc.components) {
        if (isObj(c) && c.kind === 'observability' && isObj(c.config)) opens.push(...rewrite(c.config));
      }
    }
    const report = baton.plugins.initialize(doc);
    for (const open of opens) open();
    return report;
  },
});
