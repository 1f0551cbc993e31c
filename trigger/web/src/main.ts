import './style.css';
import { api, ApiError, describe, downloadURL, getToken, initToken, setToken, subjectOf } from './api';
import type { BBox, Estimate, ExportBody, Job, Layer } from './api';
import { ExportMap, clampBBox } from './map';

const RES0 = 0.703125; // degrees per pixel at zoom 0 (internal/grid.Resolution0)
const EARTH_RADIUS = 6378137;
const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

const el = {
  signin: $('signin'), signinForm: $<HTMLFormElement>('signin-form'), tokenInput: $<HTMLInputElement>('token-input'),
  tokenError: $('token-error'), authState: $('auth-state'),
  form: $<HTMLFormElement>('export-form'), layer: $<HTMLSelectElement>('layer'), layerInfo: $('layer-info'),
  area: $<HTMLFieldSetElement>('area'), drawBtn: $<HTMLButtonElement>('draw-btn'), footprintBtn: $<HTMLButtonElement>('footprint-btn'),
  corners: ['minx', 'miny', 'maxx', 'maxy'].map((id) => $<HTMLInputElement>(id)),
  resolution: $<HTMLSelectElement>('resolution'), callbacks: $<HTMLTextAreaElement>('callbacks'),
  priority: $<HTMLInputElement>('priority'), advanced: $<HTMLDetailsElement>('advanced'),
  estimateBody: $('estimate-body'), submit: $<HTMLButtonElement>('submit-btn'), submitInfo: $('submit-info'),
  jobsList: $<HTMLOListElement>('jobs-list'), jobsStatus: $('jobs-status'), jobsEmpty: $('jobs-empty'),
};
// Where each field named by a 400 answer is shown.
const errorTargets: Record<string, { box: string; control: HTMLElement }> = {
  dbId: { box: 'layer-error', control: el.layer },
  bbox: { box: 'area-error', control: el.area },
  targetResolution: { box: 'resolution-error', control: el.resolution },
  callbackURLs: { box: 'callbacks-error', control: el.callbacks },
  priority: { box: 'priority-error', control: el.priority },
  '': { box: 'submit-error', control: el.submit },
};

let layers: Layer[] = [];
let estimate: { key: string; value: Estimate } | null = null;
let estimateAbort: AbortController | null = null;
let estimateTimer = 0;

const map = new ExportMap('map', (b) => { setCorners(b); onInput(); }, (on) => {
  el.drawBtn.setAttribute('aria-pressed', String(on));
  el.drawBtn.textContent = on ? 'Drawing… (Esc to stop)' : 'Draw a rectangle';
});

// ---------- formatting ----------
const fmtNum = (n: number) => n.toLocaleString('en-US');
function fmtBytes(n: number): string {
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let i = 0; let v = n;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return i === 0 ? `${n} bytes` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
const fmtDeg = (d: number) => d.toPrecision(4);
function fmtMetres(m: number): string {
  if (m >= 1000) return `${(m / 1000).toPrecision(3)} km`;
  if (m >= 1) return `${m.toPrecision(3)} m`;
  return `${(m * 100).toPrecision(3)} cm`;
}
const fmtCoord = (v: number) => String(Math.round(v * 1e7) / 1e7);
const fmtBBox = (b: number[]) => b.map((v) => v.toFixed(5)).join(', ');
function fmtDate(s?: string): string {
  if (!s) return '';
  const d = new Date(s.length === 10 ? s + 'T00:00:00Z' : s);
  return Number.isNaN(d.getTime()) ? s : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: s.length === 10 ? undefined : 'short' });
}

// ---------- errors next to controls ----------
function clearErrors(): void {
  for (const t of Object.values(errorTargets)) { $(t.box).textContent = ''; t.control.classList.remove('invalid'); t.control.removeAttribute('aria-invalid'); }
  map.setFootprintStyle(false);
}
function showError(field: string, text: string): void {
  const base = field.replace(/\[\d+\]$/, '');
  const t = errorTargets[base] ?? errorTargets[''];
  const box = $(t.box);
  box.textContent = box.textContent ? `${box.textContent} ${text}` : text;
  t.control.classList.add('invalid');
  t.control.setAttribute('aria-invalid', 'true');
  if (base === 'callbackURLs' || base === 'priority') el.advanced.open = true;
  if (base === 'bbox') { map.setFootprintStyle(true); map.setSelection(readCorners(), true); }
}
/** showApiError puts an API error next to the control that caused it. */
function showApiError(e: unknown, what: string): void {
  if (e instanceof ApiError && e.status === 400) {
    for (const { field, reason } of e.fields()) showError(field, field ? `${labelOf(field)}: ${reason}` : reason);
    return;
  }
  if (e instanceof ApiError && e.status === 404 && /^dbId:/.test(e.message)) { showError('dbId', e.message.replace(/^dbId: /, 'Layer: ')); return; }
  if (e instanceof ApiError && e.status === 401) needSignIn(describe(e, what));
  if (e instanceof ApiError && e.status === 413) { showError('callbackURLs', describe(e, what)); return; }
  showError('', describe(e, what));
}
function labelOf(field: string): string {
  const m = /^callbackURLs\[(\d+)\]$/.exec(field);
  if (m) return `Callback URL ${Number(m[1]) + 1}`;
  return ({ dbId: 'Layer', bbox: 'Area', targetResolution: 'Resolution', callbackURLs: 'Callback URLs', priority: 'Priority', crs: 'CRS' } as Record<string, string>)[field] ?? field;
}

// ---------- auth ----------
function needSignIn(message: string): void {
  el.signin.hidden = false;
  el.tokenError.textContent = message;
  renderAuth();
}
function renderAuth(): void {
  el.authState.replaceChildren();
  const t = getToken();
  if (!t) { el.authState.textContent = 'Not signed in.'; return; }
  const sub = subjectOf(t);
  el.authState.append(`Signed in${sub ? ` as ${sub}` : ''}.`);
  const out = document.createElement('button');
  out.type = 'button'; out.textContent = 'Sign out';
  out.addEventListener('click', () => { setToken(''); map.setPreview(undefined); el.jobsList.replaceChildren(); rows.clear(); needSignIn(''); el.tokenInput.focus(); });
  el.authState.append(out);
}
el.signinForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const t = el.tokenInput.value.trim();
  if (!t) { el.tokenError.textContent = 'Paste a token first.'; return; }
  setToken(t);
  el.tokenInput.value = '';
  el.tokenError.textContent = '';
  el.signin.hidden = true;
  renderAuth();
  void loadLayers();
  pollNow();
});

// ---------- layers ----------
let layersRetry = 0;
async function loadLayers(): Promise<void> {
  if (!getToken()) return;
  try {
    layers = await api.layers();
    layersRetry = 0;
    $('layer-error').textContent = '';
  } catch (e) {
    $('layer-error').textContent = describe(e, 'Loading the layers');
    if (e instanceof ApiError && e.status === 401) { needSignIn(describe(e, 'Loading the layers')); return; }
    if (e instanceof ApiError && e.status === 403) return;
    layersRetry = Math.min(layersRetry + 1, 5);
    setTimeout(() => void loadLayers(), 1000 * 2 ** layersRetry);
    return;
  }
  const previous = el.layer.value;
  el.layer.replaceChildren(...layers.map((l) => new Option(`${l.productId} ${l.version} (${l.productType})`, l.id)));
  map.setLayers(layers);
  if (layers.length === 0) { el.layerInfo.textContent = 'The catalog has no layers.'; return; }
  el.layer.value = layers.some((l) => l.id === previous) ? previous : layers[0].id;
  onLayerChange(true);
}
function currentLayer(): Layer | undefined { return layers.find((l) => l.id === el.layer.value); }
function onLayerChange(fit: boolean): void {
  const l = currentLayer();
  if (!l) return;
  el.layerInfo.textContent = `${l.description ? l.description + ' — ' : ''}footprint ${fmtBBox(l.footprint)}; finest zoom ${l.maxZoom} (${fmtDeg(l.maxResolution)}°/px); ${l.tileFormat} tiles.`;
  map.selectLayer(l.id, fit);
  map.setPreview(l);
  fillResolutions();
  onInput();
}
el.layer.addEventListener('change', () => onLayerChange(true));

// ---------- area ----------
function readCorners(): BBox | null {
  const v = el.corners.map((i) => (i.value.trim() === '' ? NaN : Number(i.value)));
  return v.every(Number.isFinite) ? (v as BBox) : null;
}
function setCorners(b: BBox): void { el.corners.forEach((i, k) => { i.value = fmtCoord(b[k]); }); }
el.corners.forEach((i) => i.addEventListener('input', onInput));
el.drawBtn.addEventListener('click', () => map.setDrawing(!map.isDrawing()));
el.footprintBtn.addEventListener('click', () => {
  const l = currentLayer();
  if (!l) return;
  setCorners(l.footprint);
  map.fit(l.footprint);
  onInput();
});

// ---------- resolution ----------
function fillResolutions(): void {
  const l = currentLayer();
  if (!l) return;
  const prev = Number(el.resolution.value);
  const b = readCorners();
  const lat = b ? (b[1] + b[3]) / 2 : (l.footprint[1] + l.footprint[3]) / 2;
  const opts: HTMLOptionElement[] = [];
  for (let z = 0; z <= l.maxZoom; z++) {
    const deg = RES0 / 2 ** z;
    const metres = deg * (Math.PI / 180) * EARTH_RADIUS * Math.cos((lat * Math.PI) / 180);
    opts.push(new Option(`Zoom ${z} — ${fmtDeg(deg)}°/px — ≈ ${fmtMetres(metres)}/px`, String(z)));
  }
  el.resolution.replaceChildren(...opts);
  el.resolution.value = String(Number.isInteger(prev) && el.resolution.value !== '' && prev <= l.maxZoom && el.resolution.dataset.touched ? prev : l.maxZoom);
  $('resolution-help').textContent = `Every zoom from 0 to the one chosen is exported; metres per pixel are measured east–west at latitude ${lat.toFixed(3)}°.`;
}
el.resolution.addEventListener('change', () => { el.resolution.dataset.touched = '1'; onInput(); });
el.callbacks.addEventListener('input', onInput);
el.priority.addEventListener('input', onInput);

// ---------- estimate ----------
function body(): { body: ExportBody | null; problem?: [string, string] } {
  const l = currentLayer();
  if (!l) return { body: null };
  const b = readCorners();
  if (!b) return { body: null, problem: el.corners.some((i) => i.value.trim() !== '') ? ['bbox', 'Type all four corners as numbers, or draw a rectangle.'] : undefined };
  const pr = el.priority.value.trim() === '' ? 0 : Number(el.priority.value);
  return {
    body: {
      dbId: l.id, bbox: b, targetResolution: RES0 / 2 ** Number(el.resolution.value),
      callbackURLs: el.callbacks.value.split('\n').map((s) => s.trim()).filter(Boolean),
      crs: 'EPSG:4326', priority: pr,
    },
  };
}
function onInput(): void {
  clearErrors();
  el.submitInfo.textContent = '';
  estimate = null;
  el.submit.disabled = true;
  map.setSnapped(null);
  const { body: b, problem } = body();
  map.setSelection(readCorners() ? clampBBox(readCorners()!) : null);
  fillResolutionsIfLatChanged();
  if (problem) showError(problem[0], problem[1]);
  if (!b) { el.estimateBody.innerHTML = '<p class="help">Choose an area to see the tiles and size.</p>'; return; }
  el.estimateBody.innerHTML = '<p class="help">Estimating…</p>';
  clearTimeout(estimateTimer);
  estimateTimer = window.setTimeout(() => void runEstimate(b), 350);
}
let lastLat = NaN;
function fillResolutionsIfLatChanged(): void {
  const b = readCorners();
  const lat = b ? Math.round((b[1] + b[3]) / 2) : NaN;
  if (lat !== lastLat) { lastLat = lat; fillResolutions(); }
}
async function runEstimate(b: ExportBody): Promise<void> {
  estimateAbort?.abort();
  const ctl = new AbortController();
  estimateAbort = ctl;
  try {
    const est = await api.estimate(b, ctl.signal);
    if (ctl.signal.aborted) return;
    estimate = { key: JSON.stringify(b), value: est };
    renderEstimate(est);
    map.setSnapped(est.bbox);
    el.submit.disabled = false;
  } catch (e) {
    if ((e as Error).name === 'AbortError') return;
    el.estimateBody.innerHTML = '<p class="help">No estimate: see the message next to the control.</p>';
    showApiError(e, 'The estimate');
  }
}
function renderEstimate(est: Estimate): void {
  const dl = document.createElement('dl');
  const add = (k: string, v: string) => { const dt = document.createElement('dt'); dt.textContent = k; const dd = document.createElement('dd'); dd.textContent = v; dl.append(dt, dd); };
  add('Tiles', `${fmtNum(est.tilesTotal)} (zoom 0–${est.zoom})`);
  add('Size', `≈ ${fmtBytes(est.estimatedBytes)}`);
  add('Exported area', fmtBBox(est.bbox));
  add('Resolution', `${fmtDeg(est.targetResolution)}°/px`);
  if (est.quotaAvailableBytes !== undefined && est.quotaBytes) add('Quota left', `${fmtBytes(est.quotaAvailableBytes)} of ${fmtBytes(est.quotaBytes)}`);
  const note = document.createElement('p');
  note.className = 'help';
  note.textContent = 'The area is snapped outward to whole tiles and cut to the layer footprint (green on the map).';
  el.estimateBody.replaceChildren(dl, note);
}

// ---------- submit ----------
el.form.addEventListener('submit', (ev) => { ev.preventDefault(); void submit(); });
async function submit(): Promise<void> {
  const { body: b } = body();
  if (!b || !estimate || estimate.key !== JSON.stringify(b)) return;
  clearErrors();
  el.submit.disabled = true;
  el.submitInfo.textContent = 'Submitting…';
  try {
    const ans = await api.create(b);
    if (ans.status === 'Completed') {
      const name = document.createElement('span');
      name.className = 'pkg';
      name.textContent = `${ans.packageName}.gpkg`;
      el.submitInfo.replaceChildren('Ready from an earlier export: ', name, ` (${fmtBytes(ans.fileSize)}), see “Your exports”.`);
      freshJob = ans.requestId;
    } else {
      el.submitInfo.textContent = 'Export started; follow it in “Your exports”.';
      freshJob = ans.id;
    }
    pollNow();
  } catch (e) {
    el.submitInfo.textContent = '';
    showApiError(e, 'The export');
  } finally {
    el.submit.disabled = false;
  }
}

// ---------- jobs ----------
const rows = new Map<string, JobRow>();
let freshJob = '';
let pollTimer = 0;
let failures = 0;
function pollNow(): void { clearTimeout(pollTimer); void poll(); }
async function poll(): Promise<void> {
  if (!getToken()) return;
  let delay = 2000;
  try {
    const list = await api.jobs();
    if (failures > 0) el.jobsStatus.textContent = '';
    failures = 0;
    renderJobs(list.jobs);
  } catch (e) {
    failures++;
    delay = Math.min(2000 * 2 ** failures, 30000);
    if (e instanceof ApiError && e.status === 401) { needSignIn(describe(e, 'Listing the exports')); el.jobsStatus.textContent = describe(e, 'Listing the exports'); return; }
    const retry = e instanceof ApiError && e.retryAfter ? e.retryAfter * 1000 : delay;
    delay = Math.max(delay, retry);
    el.jobsStatus.textContent = `${describe(e, 'Listing the exports')} Retrying in ${Math.round(delay / 1000)} s.`;
  }
  pollTimer = window.setTimeout(() => void poll(), delay);
}
function renderJobs(jobs: Job[]): void {
  el.jobsEmpty.hidden = jobs.length > 0;
  const seen = new Set<string>();
  let prev: HTMLElement | null = null;
  for (const j of jobs) {
    seen.add(j.id);
    let row = rows.get(j.id);
    if (!row) { row = new JobRow(j.id); rows.set(j.id, row); }
    row.update(j);
    // Keep the server's order without recreating rows (focus survives polling).
    const want: ChildNode | null = prev ? prev.nextSibling : el.jobsList.firstChild;
    if (want !== row.li) el.jobsList.insertBefore(row.li, want);
    prev = row.li;
  }
  for (const [id, row] of rows) if (!seen.has(id)) { row.li.remove(); rows.delete(id); }
  if (freshJob && rows.has(freshJob)) { rows.get(freshJob)!.li.classList.add('fresh'); freshJob = ''; }
}

class JobRow {
  li = document.createElement('li');
  private title = document.createElement('div');
  private badge = document.createElement('span');
  private cached = document.createElement('div');
  private progress = document.createElement('progress');
  private progressText = document.createElement('div');
  private meta = document.createElement('div');
  private actions = document.createElement('div');
  private error = document.createElement('p');
  private link = document.createElement('a');
  private copyBtn = document.createElement('button');
  private cancelBtn = document.createElement('button');
  private showBtn = document.createElement('button');
  private job?: Job;

  constructor(id: string) {
    this.li.className = 'job';
    this.li.dataset.jobId = id; // a hook for tests and user scripts
    const head = document.createElement('div'); head.className = 'job-head';
    this.title.className = 'job-title';
    head.append(this.title, this.badge);
    this.cached.className = 'cached'; this.cached.textContent = 'Ready from an earlier export';
    this.progress.max = 100;
    this.progress.id = `progress-${id}`;
    this.progressText.className = 'meta';
    this.meta.className = 'meta';
    this.actions.className = 'actions';
    this.error.className = 'error'; this.error.setAttribute('role', 'alert');
    this.copyBtn.type = 'button'; this.copyBtn.textContent = 'Copy link';
    this.copyBtn.title = 'Copies the download link; it contains your token, share it only with people who may use it.';
    this.cancelBtn.type = 'button'; this.cancelBtn.textContent = 'Cancel';
    this.showBtn.type = 'button'; this.showBtn.textContent = 'Show on map';
    this.link.rel = 'noopener';
    this.copyBtn.addEventListener('click', () => void this.copy());
    this.cancelBtn.addEventListener('click', () => void this.cancel());
    this.showBtn.addEventListener('click', () => { if (this.job) map.showJob(this.job.result?.bbox ?? this.job.bbox); });
    this.li.append(head, this.cached, this.progress, this.progressText, this.meta, this.actions, this.error);
  }

  update(j: Job): void {
    this.job = j;
    const layer = layers.find((l) => l.id === j.dbId);
    this.title.textContent = `${layer ? `${layer.productId} ${layer.version}` : j.dbId} · zoom ${j.zoom}`;
    this.li.dataset.status = j.status;
    this.badge.className = `badge ${j.status}`;
    this.badge.textContent = j.status === 'In-Progress' ? 'In progress' : j.status;
    this.cached.hidden = !j.fromCache;
    const running = j.status === 'In-Progress';
    this.progress.hidden = !running && j.status !== 'Completed';
    this.progress.value = j.percentage;
    this.progress.setAttribute('aria-label', `Progress of export ${j.packageName}`);
    this.progress.setAttribute('aria-valuetext', `${j.percentage} %`);
    this.progressText.textContent = `${j.percentage} % — ${fmtNum(j.tilesDone)} of ${fmtNum(j.tilesTotal)} tiles`;
    this.progressText.hidden = this.progress.hidden;
    const lines = [`Requested ${fmtDate(j.createdAt)} · bbox ${fmtBBox(j.bbox)}`];
    if (j.status === 'Completed' && j.result?.success) {
      lines.push(`${fmtBytes(j.result.fileSize)} · available until ${fmtDate(j.expiresAt ?? j.result.expirationTime)}`);
    } else if (running) {
      lines.push(`Estimated ${fmtBytes(j.estimatedBytes)}`);
    } else if (j.reason || j.result?.errorReason) {
      lines.push(`Reason: ${j.reason ?? j.result?.errorReason}`);
    } else if (j.status === 'Expired') {
      lines.push('The package has expired and was deleted; export again to get it.');
    }
    this.meta.textContent = lines.join('\n');
    this.meta.style.whiteSpace = 'pre-line';
    const children: HTMLElement[] = [];
    if (j.status === 'Completed' && j.result?.success) {
      const url = downloadURL(j.result.fileUri);
      if (this.link.href !== url) this.link.href = url;
      this.link.setAttribute('download', `${j.result.packageName || j.packageName}.gpkg`);
      this.link.textContent = `Download ${j.result.packageName || j.packageName}.gpkg (${fmtBytes(j.result.fileSize)})`;
      children.push(this.link, this.copyBtn);
    }
    if (running) children.push(this.cancelBtn);
    children.push(this.showBtn);
    if (children.some((c, i) => this.actions.children[i] !== c) || this.actions.children.length !== children.length) this.actions.replaceChildren(...children);
  }

  private async copy(): Promise<void> {
    if (!this.job?.result) return;
    const url = downloadURL(this.job.result.fileUri);
    try {
      await navigator.clipboard.writeText(url);
      this.error.className = 'info'; this.error.textContent = 'Link copied.';
    } catch {
      this.error.className = 'error';
      this.error.textContent = 'The browser did not allow copying; right-click the download link and copy it.';
    }
  }

  private async cancel(): Promise<void> {
    if (!this.job) return;
    this.cancelBtn.disabled = true;
    this.error.className = 'error'; this.error.textContent = '';
    try {
      this.update(await api.cancel(this.job.id));
    } catch (e) {
      this.error.textContent = e instanceof ApiError && e.status === 403
        ? 'Only the person who started this export can cancel it.'
        : describe(e, 'Cancelling');
    } finally {
      this.cancelBtn.disabled = false;
    }
  }
}

// ---------- start ----------
function start(): void {
  initToken();
  renderAuth();
  if (!getToken()) { needSignIn(''); return; }
  void loadLayers();
  void poll();
}
start();
