// Builds the viewer into ../build, which is committed: the app runs without Node, and .ci/run rebuilds it and
// fails if the committed bundle differs from this source and package-lock.json.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const out = new URL('../build/', import.meta.url).pathname;
rmSync(out, { recursive: true, force: true });
mkdirSync(out);
await build({
  entryPoints: ['src/main.js'],
  bundle: true,
  format: 'esm',
  minify: true,
  legalComments: 'linked',
  outfile: `${out}main.js`,
  loader: { '.wasm': 'file' },
  // Cornerstone's optional Node paths (its codecs' loaders) are never taken in a browser; a dependency of its
  // tools needs Node's 'events', which the npm package 'events' provides for browsers.
  alias: { url: './src/url-shim.js' },
  external: ['fs', 'path', 'crypto', 'stream', 'util'],
  logLevel: 'warning',
});
// The page, its indentation and line breaks dropped: what is served is built, not a copy of the source.
writeFileSync(`${out}index.html`, readFileSync('index.html', 'utf8').replace(/\n\s*/g, ''));
