// Types of the ESM entry point: the same API as the CommonJS one.
export * from './index.js';
import * as baton from './index.js';
export default baton;
