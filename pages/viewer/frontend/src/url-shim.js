// Cornerstone's codec loaders import Node's 'url' for a path the browser never takes; esbuild resolves it here
// (build.mjs), to the browser's own URL.
export const URL = globalThis.URL;
export const URLSearchParams = globalThis.URLSearchParams;
export default { URL, URLSearchParams };
