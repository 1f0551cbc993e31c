// Builds the page into dist/: dist/index.html and dist/app/{app.js,app.css}.
// dist/ is committed and embedded into the Go binary by trigger/web.go, so
// `go build` and `make run` need no npm. Run `npm ci && npm run build` after
// changing anything under src/ and commit dist/ with the change.
import * as esbuild from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';

await rm('dist', { recursive: true, force: true });
await mkdir('dist/app', { recursive: true });
await esbuild.build({
  entryPoints: { app: 'src/main.ts' },
  bundle: true,
  format: 'esm',
  target: ['es2022'],
  minify: true,
  sourcemap: false,
  legalComments: 'linked',
  outdir: 'dist/app',
  logLevel: 'info',
});
await copyFile('src/index.html', 'dist/index.html');
