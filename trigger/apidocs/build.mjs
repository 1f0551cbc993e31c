// Builds the API reference into dist/: our index.html and docs.js beside
// Swagger UI's own bundle, stylesheet and licence, copied unchanged from the
// pinned swagger-ui-dist package. dist/ is committed and embedded into the
// Go binary by trigger/openapi.go, so `go build` and `make run` need no npm.
// Run `npm ci --ignore-scripts && npm run build` after changing src/ or the
// pinned version, and commit dist/ with the change.
import { copyFile, mkdir, rm } from 'node:fs/promises';

const ui = 'node_modules/swagger-ui-dist';
await rm('dist', { recursive: true, force: true });
await mkdir('dist', { recursive: true });
for (const [from, to] of [
  ['src/index.html', 'index.html'],
  ['src/docs.js', 'docs.js'],
  ['src/docs.css', 'docs.css'],
  [`${ui}/swagger-ui-bundle.js`, 'swagger-ui-bundle.js'],
  [`${ui}/swagger-ui.css`, 'swagger-ui.css'],
  [`${ui}/LICENSE`, 'swagger-ui-LICENSE.txt'],
  [`${ui}/NOTICE`, 'swagger-ui-NOTICE.txt'],
  [`${ui}/swagger-ui-bundle.js.LICENSE.txt`, 'swagger-ui-bundle.js.LICENSE.txt'],
]) {
  await copyFile(from, `dist/${to}`);
}
