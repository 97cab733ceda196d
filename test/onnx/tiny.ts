/** Test helper: the one-input model builder lives with the fixtures (the benches use it too). */
export { tinyModel, type TinySpec } from '../fixtures/tiny.js';
