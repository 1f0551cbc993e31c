import './style.css';
import Polygon, { fromExtent } from 'ol/geom/Polygon';
import type MultiPolygon from 'ol/geom/MultiPolygon';
import Feature from 'ol/Feature';
import { api, ApiError, describe, downloadURL, getToken, initToken, setToken, subjectOf } from './api';
import type { AreaBody, AreaEstimate, BBox, Job, Layer, Storage } from './api';
import { ExportMap, clampBBox } from './map';
import type { DrawMode } from './map';
import { fmtBBox, fmtBytes, fmtCoord, fmtDate, fmtDeg, fmtDuration, fmtMetres, fmtNum, groupDigits } from './format';
import { extentOf, isBox, readFile, toFeature } from './selection';
import type { Selection, SelectionKind } from './selection';
import { bboxTilesByZoom, finestWithin, metresPerPixel, resolution } from './zoom';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

const el = {
  signin: $('signin'), signinForm: $<HTMLFormElement>('signin-form'), tokenInput: $<HTMLInputElement>('token-input'),
  tokenError: $('token-error'), authState: $('auth-state'),
  form: $<HTMLFormElement>('export-form'), layer: $<HTMLSelectElement>('layer'), layerInfo: $('layer-info'),
  area: $<HTMLFieldSetElement>('area'), areaError: $('area-error'),
  drawRect: $<HTMLButtonElement>('draw-rect-btn'), drawPoly: $<HTMLButtonElement>('draw-poly-btn'),
  cornersBtn: $<HTMLButtonElement>('corners-btn'), importBtn: $<HTMLButtonElement>('import-btn'),
  importFile: $<HTMLInputElement>('import-file'), importInfo: $('import-info'), whole: $<HTMLInputElement>('whole-layer'),
  cornersBox: $('corners-box'), cornersTitle: $('corners-title'),
  corners: ['minx', 'miny', 'maxx', 'maxy'].map((id) => $<HTMLInputElement>(id)),
  selections: $<HTMLOListElement>('selections'), selectionsEmpty: $('selections-empty'),
  description: $<HTMLInputElement>('description'), callbacks: $<HTMLTextAreaElement>('callbacks'),
  priority: $<HTMLInputElement>('priority'), advanced: $<HTMLDetailsElement>('advanced'),
  estimateBody: $('estimate-body'), storageFree: $('storage-free'), storageError: $('storage-error'), submit: $<HTMLButtonElement>('submit-btn'), submitInfo: $('submit-info'),
  jobsList: $<HTMLOListElement>('jobs-list'), jobsStatus: $('jobs-status'), jobsEmpty: $('jobs-empty'),
};
// Where each field named by a 400 answer is shown; roi.features[i].… goes next to selection i.
const errorTargets: Record<string, { box: string; control: HTMLElement }> = {
  dbId: { box: 'layer-error', control: el.layer },
  roi: { box: 'area-error', control: el.area },
  description: { box: 'description-error', control: el.description },
  callbackURLs: { box: 'callbacks-error', control: el.callbacks },
  priority: { box: 'priority-error', control: el.priority },
  '': { box: 'submit-error', control: el.submit },
};
const CORNER_NAMES = ['West', 'South', 'East', 'North'];

let layers: Layer[] = [];
let selections: Selection[] = [];
let nextID = 1;
let active: number | null = null; // the selection the corners and the map's vertex handles edit
let editing = false;              // whether the active selection's vertices can be moved
let cornersNew = false;           // the corners make a new rectangle (no rectangle is active)
let estimate: { key: string; value: AreaEstimate } | null = null;
let estimateAbort: AbortController | null = null;
let estimateTimer = 0;
let estimateFailed = false; // the last estimate was refused: selections without a problem of their own wait
// bytesPerTile is the estimate's size of one tile of the current layer, learnt from its answers;
// until then the smallest default (a JPEG tile's), so that a first guess is never too coarse.
let bytesPerTile = 12_000;

const map = new ExportMap('map', {
  drawn: (kind, g) => addSelection(kind, kind === 'rectangle' ? 'Rectangle' : 'Polygon', g),
  modeChanged: (mode) => renderMode(mode),
  modified: (id) => {
    const s = byID(id);
    if (!s) return;
    if (s.kind === 'rectangle' && !isBox(s.feature.getGeometry()!)) s.kind = 'polygon';
    if (id === active) fillCorners();
    onChange();
  },
  picked: (id) => activate(id, editing && id === active),
});

// ---------- errors next to controls ----------
function clearErrors(): void {
  for (const t of Object.values(errorTargets)) { $(t.box).textContent = ''; t.control.classList.remove('invalid'); t.control.removeAttribute('aria-invalid'); }
  for (const s of selections) { s.error = undefined; map.setInvalid(s.id, false); }
  map.setFootprintStyle(false);
}
function showError(field: string, text: string): void {
  const base = field.replace(/\[\d+\]$/, '').replace(/\..*$/, '');
  const t = errorTargets[base] ?? errorTargets[''];
  const box = $(t.box);
  box.textContent = box.textContent ? `${box.textContent} ${text}` : text;
  t.control.classList.add('invalid');
  t.control.setAttribute('aria-invalid', 'true');
  if (base === 'callbackURLs' || base === 'priority') el.advanced.open = true;
  if (base === 'roi' && /footprint/.test(text)) map.setFootprintStyle(true);
}
/** sent are the selections of the last body sent, in the order of its roi's features. */
let sent: Selection[] = [];
/** showApiError puts an API error next to the control, or the selection, that caused it. */
function showApiError(e: unknown, what: string): void {
  if (e instanceof ApiError && e.status === 400) {
    for (const { field, reason } of e.fields()) {
      const m = /^roi\.features\[(\d+)\](?:\.(.*))?$/.exec(field);
      const s = m ? sent[Number(m[1])] : undefined;
      if (s) {
        const text = `${labelOf(m![2] ?? '')}${sayInFormWords(reason)}`;
        s.error = s.error ? `${s.error} ${text}` : text;
        map.setInvalid(s.id, true);
        if (/footprint/.test(reason)) map.setFootprintStyle(true);
      } else {
        const label = field && field !== 'roi' ? labelOf(field) : '';
        const text = sayInFormWords(reason);
        showError(field, label ? label + text : text.charAt(0).toUpperCase() + text.slice(1));
      }
    }
    renderSelections();
    return;
  }
  if (e instanceof ApiError && e.status === 404 && /^dbId:/.test(e.message)) { showError('dbId', e.message.replace(/^dbId: /, 'Layer: ')); return; }
  if (e instanceof ApiError && e.status === 401) { needSignIn(describe(e, what)); return; }
  if (e instanceof ApiError && e.status === 413) { showError('callbackURLs', describe(e, what)); return; }
  showError('', sayInFormWords(describe(e, what)));
}
/** labelOf names a field of a request as the form does, with a colon after it. */
function labelOf(field: string): string {
  const m = /^callbackURLs\[(\d+)\]$/.exec(field);
  if (m) return `Callback URL ${Number(m[1]) + 1}: `;
  const label = ({
    dbId: 'Layer', roi: 'Areas', callbackURLs: 'Callback URLs', priority: 'Priority', crs: 'CRS', description: 'Description',
    geometry: 'Area', 'properties.maxResolutionDeg': 'Max zoom', 'properties.minResolutionDeg': 'Min zoom', properties: 'Zooms',
  } as Record<string, string>)[field];
  return label ? `${label}: ` : field ? `${field}: ` : '';
}
/** sayInFormWords rewrites an API message in the form's words, with thousands separators. */
function sayInFormWords(m: string): string {
  return groupDigits(m.replace(/maxResolutionDeg/g, 'max zoom').replace(/minResolutionDeg/g, 'min zoom')
    .replace(/ \(roi omitted\)/g, '').replace(/\broi\b/g, 'areas'));
}

// ---------- layers ----------
let layersRetry = 0;
async function loadLayers(): Promise<void> {
  if (!getToken()) return;
  try {
    layers = await api.layers();
    accepted();
    layersRetry = 0;
    $('layer-error').textContent = '';
  } catch (e) {
    // A refused token is said once, in the sign-in box.
    if (e instanceof ApiError && e.status === 401) { needSignIn(describe(e, 'Loading the layers')); return; }
    $('layer-error').textContent = describe(e, 'Loading the layers');
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
  el.layerInfo.textContent = `${l.description ? l.description + ' — ' : ''}finest zoom ${l.maxZoom}, ${l.tileFormat} tiles; footprint in blue on the map.`;
  el.layerInfo.title = `Footprint ${fmtBBox(l.footprint)} (West, South, East, North); finest resolution ${fmtDeg(l.maxResolution)}°/px.`;
  map.selectLayer(l.id, fit && selections.length === 0);
  map.setPreview(l);
  // A finer zoom than the new layer has is not allowed: clamp.
  for (const s of selections) { s.maxZoom = Math.min(s.maxZoom, l.maxZoom); s.minZoom = Math.min(s.minZoom, s.maxZoom); }
  onChange();
}
el.layer.addEventListener('change', () => { bytesPerTile = 12_000; onLayerChange(true); });

// ---------- selections ----------
function byID(id: number): Selection | undefined { return selections.find((s) => s.id === id); }

/** addSelection adds an area with a zoom range: from its file when given, else the default, which probes the estimate. */
function addSelection(kind: SelectionKind, name: string, g: Polygon | MultiPolygon, zooms?: { min?: number; max?: number }, fromFile = false): Selection {
  const l = currentLayer();
  const maxZoom = l?.maxZoom ?? 0;
  const f = g instanceof Polygon && kind === 'rectangle' ? fromExtent(clampBBox(g.getExtent() as BBox)) : g;
  const s: Selection = { id: nextID++, kind, name, feature: new Feature(f), minZoom: 0, maxZoom, zoomFrom: 'default' };
  if (zooms?.max !== undefined || zooms?.min !== undefined) {
    const want = { min: zooms.min ?? 0, max: zooms.max ?? maxZoom };
    s.maxZoom = Math.max(0, Math.min(want.max, maxZoom));
    s.minZoom = Math.max(0, Math.min(want.min, s.maxZoom));
    s.zoomFrom = 'file';
    if (want.max > maxZoom) s.note = `The file asks for zoom ${want.max}; this layer's finest is ${maxZoom}.`;
  } else {
    if (fromFile) s.note = 'The file gives no minResolutionDeg or maxResolutionDeg: the zooms are the default.';
    s.maxZoom = guessZoom(s);
  }
  selections.push(s);
  map.addSelection(s.id, s.feature, String(selections.length));
  activate(s.id, false);
  if (s.zoomFrom === 'default') {
    probing.add(s);
    probes = probes.then(() => refineZoom(s)).finally(() => { probing.delete(s); renderSelections(); });
  }
  onChange();
  return s;
}

/**
 * guessZoom is a first default zoom for s, computed here: the finest whose export of
 * s's bounding box (cut to the footprint) from zoom 0 stays within the size budget. The
 * bounding box holds at least the area's tiles, so the guess is never too fine;
 * refineZoom then asks the server for the area's own tiles.
 */
function guessZoom(s: Selection): number {
  const l = currentLayer();
  if (!l) return 0;
  const [w, so, e, n] = extentOf(s);
  const fp = l.footprint;
  const b: BBox = [Math.max(w, fp[0]), Math.max(so, fp[1]), Math.min(e, fp[2]), Math.min(n, fp[3])];
  if (b[0] >= b[2] || b[1] >= b[3]) return l.maxZoom; // outside the footprint: the estimate will say so
  return finestWithin(bboxTilesByZoom(b, l.maxZoom), bytesPerTile);
}

// probes runs the estimates of default zooms one after another, not all at once after an import.
let probes: Promise<void> = Promise.resolve();
// probing are the selections whose default zoom is still being refined (data-zoom-pending).
const probing = new Set<Selection>();

/**
 * refineZoom sets the default zoom of s from the server's count of its own tiles: it asks
 * for the estimate of s alone up to three zooms finer than the guess (a polygon may cover
 * 1/64 of its bounding box), and takes the finest zoom within the size budget. A person's
 * choice made meanwhile stands.
 */
async function refineZoom(s: Selection): Promise<void> {
  const l = currentLayer();
  if (!l || s.zoomFrom !== 'default' || !selections.includes(s)) return;
  const probe = { ...s, minZoom: 0, maxZoom: Math.min(l.maxZoom, s.maxZoom + 3) };
  let est: AreaEstimate;
  try {
    est = await api.estimate({ dbId: l.id, roi: { type: 'FeatureCollection', features: [toFeature(probe)] }, callbackURLs: [], crs: 'EPSG:4326', priority: 0 });
  } catch { return; } // the guess stands; the estimate of the whole form reports any problem
  if (s.zoomFrom !== 'default' || !selections.includes(s) || est.tilesTotal === 0) return;
  bytesPerTile = est.estimatedBytes / est.tilesTotal;
  const tiles = Array.from({ length: probe.maxZoom + 1 }, (_, z) => est.tilesByZoom.find((t) => t.zoom === z)?.tiles ?? 0);
  const z = finestWithin(tiles, bytesPerTile);
  if (z !== s.maxZoom) { s.maxZoom = z; onChange(); }
}

/** activate makes selection id the one the corners and vertex handles edit. */
function activate(id: number | null, edit: boolean): void {
  active = id;
  editing = edit && id !== null;
  cornersNew = false;
  map.setActive(active, editing);
  fillCorners();
  renderSelections();
}

function deleteSelection(id: number): void {
  const i = selections.findIndex((s) => s.id === id);
  if (i < 0) return;
  selections.splice(i, 1);
  map.removeSelection(id);
  selections.forEach((s, k) => map.setLabel(s.id, String(k + 1)));
  if (active === id) activate(null, false);
  onChange();
}

/** zoomOptions are the zooms of the current layer, each with its metres per pixel at latitude lat. */
function zoomOptions(lat: number, from: number, to: number, chosen: number): HTMLOptionElement[] {
  const opts: HTMLOptionElement[] = [];
  for (let z = from; z <= to; z++) {
    const o = new Option(`${z} — ${fmtMetres(metresPerPixel(z, lat))}/px`, String(z), false, z === chosen);
    o.title = `Zoom ${z}: ${fmtDeg(resolution(z))}°/px, about ${fmtMetres(metresPerPixel(z, lat))} per pixel east–west at latitude ${lat.toFixed(2)}°`;
    opts.push(o);
  }
  return opts;
}

/**
 * renderSelections redraws the list. Each item has stable hooks for tests and scripts:
 * data-selection-id, data-selection-index (its feature's index in the roi), data-kind,
 * data-extent (west,south,east,north), data-zoom-from and data-zoom-pending,
 * select[data-zoom="min"|"max"], [data-selection-estimate] (its estimated bytes),
 * [data-selection-error] and button[data-action="edit"|"delete"].
 */
function renderSelections(): void {
  const l = currentLayer();
  const focused = document.activeElement instanceof HTMLElement ? document.activeElement.dataset.focusKey : undefined;
  const items = selections.map((s, i) => {
    const li = document.createElement('li');
    li.className = 'selection';
    li.dataset.selectionId = String(s.id);
    li.dataset.selectionIndex = String(i);
    li.dataset.kind = s.kind;
    li.dataset.extent = extentOf(s).map((v) => v.toFixed(7)).join(',');
    if (s.id === active) li.setAttribute('aria-current', 'true');
    if (s.error) li.classList.add('invalid');
    li.dataset.zoomFrom = s.zoomFrom;
    if (probing.has(s)) li.dataset.zoomPending = 'true';
    const head = document.createElement('div');
    head.className = 'sel-head';
    const name = document.createElement('button');
    name.type = 'button'; name.className = 'sel-name';
    name.textContent = `${i + 1}. ${s.name}`;
    name.title = 'Show it on the map and edit its corners';
    name.dataset.focusKey = `name-${s.id}`;
    name.addEventListener('click', () => { activate(s.id, editing && s.id === active); map.fitSelections([s.feature]); });
    const edit = document.createElement('button');
    edit.type = 'button'; edit.dataset.action = 'edit'; edit.dataset.focusKey = `edit-${s.id}`;
    const isEditing = editing && s.id === active;
    edit.textContent = isEditing ? 'Done' : 'Edit';
    edit.setAttribute('aria-pressed', String(isEditing));
    edit.setAttribute('aria-label', `${isEditing ? 'Stop editing' : 'Edit the vertices of'} selection ${i + 1}`);
    edit.addEventListener('click', () => activate(s.id, !isEditing));
    const del = document.createElement('button');
    del.type = 'button'; del.dataset.action = 'delete'; del.textContent = 'Delete';
    del.setAttribute('aria-label', `Delete selection ${i + 1}`);
    del.addEventListener('click', () => deleteSelection(s.id));
    head.append(name, edit, del);

    const zooms = document.createElement('div');
    zooms.className = 'sel-zooms';
    const [, so, , n] = extentOf(s);
    const lat = (so + n) / 2;
    const top = l?.maxZoom ?? s.maxZoom;
    for (const which of ['min', 'max'] as const) {
      const lab = document.createElement('label');
      const sel = document.createElement('select');
      sel.dataset.zoom = which;
      sel.dataset.focusKey = `${which}-${s.id}`;
      lab.append(which === 'min' ? 'Min zoom (coarsest)' : 'Max zoom (finest)', sel);
      sel.append(...(which === 'min' ? zoomOptions(lat, 0, s.maxZoom, s.minZoom) : zoomOptions(lat, s.minZoom, top, s.maxZoom)));
      sel.setAttribute('aria-label', `${which === 'min' ? 'Min' : 'Max'} zoom of selection ${i + 1}`);
      sel.addEventListener('change', () => {
        if (which === 'min') s.minZoom = Number(sel.value); else s.maxZoom = Number(sel.value);
        s.zoomFrom = 'person';
        s.note = undefined;
        onChange();
      });
      zooms.append(lab);
    }
    const est = document.createElement('p');
    est.className = 'sel-estimate';
    est.dataset.selectionEstimate = s.estimate ? String(s.estimate.bytes) : '';
    est.textContent = s.estimate
      ? `${fmtNum(s.estimate.tiles)} tiles (zoom ${s.minZoom}–${s.maxZoom}) · ≈ ${fmtBytes(s.estimate.bytes)}`
      : s.error ? '' : el.whole.checked ? 'Not exported while Whole layer is ticked.'
      : estimateFailed ? 'No estimate until the problem in red is solved.' : 'Estimating…';
    const parts: HTMLElement[] = [head, zooms, est];
    if (s.note) { const p = document.createElement('p'); p.className = 'help'; p.textContent = s.note; parts.push(p); }
    const err = document.createElement('p');
    err.className = 'error'; err.dataset.selectionError = ''; err.setAttribute('role', 'alert');
    err.textContent = s.error ?? '';
    parts.push(err);
    li.append(...parts);
    return li;
  });
  el.selections.replaceChildren(...items);
  el.selectionsEmpty.hidden = selections.length > 0;
  // With Whole layer the selections are kept but not sent.
  el.selections.classList.toggle('disabled', el.whole.checked);
  for (const c of el.selections.querySelectorAll<HTMLSelectElement | HTMLButtonElement>('select, button')) c.disabled = el.whole.checked;
  // Keep the focus on the control that had it: the list is redrawn under it.
  if (focused) (el.selections.querySelector(`[data-focus-key="${focused}"]`) as HTMLElement | null)?.focus();
  renderCorners();
}

// ---------- corners ----------
function activeRectangle(): Selection | undefined {
  const s = active === null ? undefined : byID(active);
  return s?.kind === 'rectangle' ? s : undefined;
}
function renderCorners(): void {
  const r = activeRectangle();
  el.cornersBox.hidden = el.whole.checked || (!r && !cornersNew);
  el.cornersBtn.setAttribute('aria-expanded', String(!el.cornersBox.hidden));
  el.cornersTitle.textContent = r ? `Corners of selection ${selections.indexOf(r) + 1}` : 'New rectangle: type its corners';
}
function fillCorners(): void {
  const r = activeRectangle();
  cornersProblem = '';
  const b = r ? extentOf(r) : null;
  el.corners.forEach((i, k) => { i.value = b ? fmtCoord(b[k]) : ''; });
}
/** readCorners checks the typed corners; a message in the form's words when they do not make a rectangle. */
function readCorners(): { bbox?: BBox; problem?: string } {
  const v = el.corners.map((i) => (i.value.trim() === '' ? NaN : Number(i.value)));
  const missing = v.map((x, k) => (Number.isFinite(x) ? '' : CORNER_NAMES[k])).filter(Boolean);
  if (missing.length) return { problem: `Type ${missing.join(', ')} as ${missing.length > 1 ? 'numbers' : 'a number'} of degrees.` };
  const [w, s, e, n] = v;
  const problems: string[] = [];
  for (const [k, lim] of [[0, 180], [1, 90], [2, 180], [3, 90]]) {
    if (Math.abs(v[k]) > lim) problems.push(`${CORNER_NAMES[k]} must be within −${lim} and ${lim}.`);
  }
  if (w >= e) problems.push('West must be less than East.');
  if (s >= n) problems.push('South must be less than North.');
  return problems.length ? { problem: problems.join(' ') } : { bbox: [w, s, e, n] };
}
let cornersProblem = '';
function onCornersInput(): void {
  const { bbox, problem } = readCorners();
  cornersProblem = problem ?? '';
  if (bbox) {
    const r = activeRectangle();
    if (r) r.feature.setGeometry(fromExtent(bbox));
    else { addSelection('rectangle', 'Rectangle', fromExtent(bbox)); return; }
  }
  onChange();
}
el.corners.forEach((i) => i.addEventListener('input', onCornersInput));
el.cornersBtn.addEventListener('click', () => {
  if (!el.cornersBox.hidden && !activeRectangle()) { cornersNew = false; renderCorners(); return; }
  activate(null, false);
  cornersNew = true;
  renderCorners();
  el.corners[0].focus();
});

// ---------- drawing, importing, whole layer ----------
function renderMode(mode: DrawMode): void {
  el.drawRect.setAttribute('aria-pressed', String(mode === 'rectangle'));
  el.drawPoly.setAttribute('aria-pressed', String(mode === 'polygon'));
  el.drawRect.textContent = mode === 'rectangle' ? 'Drawing… (Esc)' : 'Rectangle';
  el.drawPoly.textContent = mode === 'polygon' ? 'Drawing… (Esc)' : 'Polygon';
}
el.drawRect.addEventListener('click', () => map.setDrawMode(map.drawMode() === 'rectangle' ? null : 'rectangle'));
el.drawPoly.addEventListener('click', () => map.setDrawMode(map.drawMode() === 'polygon' ? null : 'polygon'));
el.importBtn.addEventListener('click', () => el.importFile.click());
el.importFile.addEventListener('change', () => {
  const files = [...(el.importFile.files ?? [])];
  el.importFile.value = '';
  void importFiles(files);
});
async function importFiles(files: File[]): Promise<void> {
  el.importInfo.className = 'info';
  el.importInfo.textContent = '';
  const added: Selection[] = [];
  const said: string[] = [];
  for (const file of files) {
    try {
      const got = await readFile(file);
      for (const f of got.features) {
        added.push(addSelection('imported', f.name, f.feature.getGeometry()!, { min: f.minZoom, max: f.maxZoom }, true));
      }
      said.push(`${file.name}: ${fmtNum(got.features.length)} area${got.features.length === 1 ? '' : 's'} imported` +
        (got.skipped ? `; ${fmtNum(got.skipped)} feature${got.skipped === 1 ? '' : 's'} without an area (points, lines) left out.` : '.'));
    } catch (e) {
      el.importInfo.className = 'error';
      said.push((e as Error).message);
    }
  }
  el.importInfo.textContent = said.join(' ');
  map.fitSelections(added.map((s) => s.feature));
}
el.whole.addEventListener('change', () => {
  for (const b of [el.drawRect, el.drawPoly, el.cornersBtn, el.importBtn]) b.disabled = el.whole.checked;
  const l = currentLayer();
  if (el.whole.checked) { map.setDrawMode(null); activate(null, false); if (l) map.fit(l.footprint); }
  onChange();
});

// ---------- estimate ----------
/** body is the request of the form, or a problem (the field and a message in the form's words) that keeps it from being sent. */
function body(): { body: AreaBody | null; problem?: [string, string] } {
  const l = currentLayer();
  if (!l) return { body: null };
  const pr = el.priority.value.trim() === '' ? 0 : Number(el.priority.value);
  const b: AreaBody = {
    dbId: l.id, callbackURLs: el.callbacks.value.split('\n').map((s) => s.trim()).filter(Boolean), crs: 'EPSG:4326', priority: pr,
  };
  const d = el.description.value.trim();
  if (d) b.description = d;
  if (el.whole.checked) return { body: b };
  if (cornersProblem && (activeRectangle() || cornersNew)) return { body: null, problem: ['roi', cornersProblem] };
  if (selections.length === 0) return { body: null };
  b.roi = { type: 'FeatureCollection', features: selections.map(toFeature) };
  return { body: b };
}
/** onChange follows any change of the form: redraw, and ask for the estimate once typing pauses. */
function onChange(): void {
  clearErrors();
  el.submitInfo.textContent = '';
  estimate = null;
  renderSubmit();
  for (const s of selections) s.estimate = undefined;
  estimateFailed = false;
  const { body: b, problem } = body();
  if (problem) showError(problem[0], problem[1]);
  renderSelections();
  if (!b) {
    el.estimateBody.innerHTML = '<p class="help">Choose an area to see the tiles and size.</p>';
    clearTimeout(estimateTimer);
    estimateAbort?.abort();
    return;
  }
  el.estimateBody.innerHTML = '<p class="help">Estimating…</p>';
  clearTimeout(estimateTimer);
  const these = el.whole.checked ? [] : [...selections];
  estimateTimer = window.setTimeout(() => void runEstimate(b, these), 350);
}
async function runEstimate(b: AreaBody, these: Selection[]): Promise<void> {
  estimateAbort?.abort();
  const ctl = new AbortController();
  estimateAbort = ctl;
  sent = these;
  try {
    const est = await api.estimate(b, ctl.signal);
    if (ctl.signal.aborted) return;
    estimate = { key: JSON.stringify(b), value: est };
    if (est.tilesTotal > 0) bytesPerTile = est.estimatedBytes / est.tilesTotal;
    // The estimate's quota left is the same number as GET /storage's, and newer.
    if (est.quotaBytes && est.quotaAvailableBytes !== undefined) storage = { free: est.quotaAvailableBytes, size: est.quotaBytes };
    for (const f of est.features ?? []) {
      const s = these[f.index];
      if (s) s.estimate = { tiles: f.tiles, bytes: f.estimatedBytes };
    }
    renderSelections();
    renderEstimate(est);
    renderSubmit();
  } catch (e) {
    if ((e as Error).name === 'AbortError') return;
    el.estimateBody.innerHTML = '<p class="help">No estimate: see the message next to the selection or control.</p>';
    estimateFailed = true;
    showApiError(e, 'The estimate');
    renderSelections();
  }
}
function renderEstimate(est: AreaEstimate): void {
  const dl = document.createElement('dl');
  const add = (k: string, v: string) => { const dt = document.createElement('dt'); dt.textContent = k; const dd = document.createElement('dd'); dd.textContent = v; dl.append(dt, dd); };
  const zooms = est.tilesByZoom.map((t) => t.zoom);
  add('Tiles', `${fmtNum(est.tilesTotal)} (zoom ${zooms.length ? Math.min(...zooms) : 0}–${est.maxZoom})`);
  add('Size', `≈ ${fmtBytes(est.estimatedBytes)}`);
  el.estimateBody.replaceChildren(dl);
}

// ---------- storage ----------
/** storage is the last GET /storage (or the quota an estimate reported); null until known. */
let storage: Storage | null = null;
let submitting = false;
/**
 * loadStorage reads the free space again: at the start and whenever it changes, when an
 * export is made, ends (its reservation becomes its package, or is released), expires or
 * is cancelled. A failure leaves the last answer, and the next change asks again.
 */
async function loadStorage(): Promise<void> {
  if (!getToken()) return;
  try {
    storage = await api.storage();
    accepted();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) needSignIn(describe(e, 'Reading the free space'));
    return;
  }
  renderSubmit();
}
/**
 * renderSubmit shows the free space beside the estimate, and enables Export only once the
 * estimate of the form is in and fits in it, saying otherwise how much is needed and free.
 */
function renderSubmit(): void {
  const free = storage?.free ?? null;
  const size = storage?.size ?? null;
  el.storageFree.hidden = free === null;
  el.storageFree.dataset.free = free === null ? '' : String(free);
  el.storageFree.textContent = free === null ? '' : `Free for packages: ${fmtBytes(free)}${size === null ? '' : ` of ${fmtBytes(size)}`}`;
  const need = estimate?.value.estimatedBytes;
  const short = need !== undefined && free !== null && need > free;
  el.storageError.textContent = short
    ? `Too large for the free space: this export needs ≈ ${fmtBytes(need)}, and ${fmtBytes(free)} is free. ` +
      'Choose a smaller area or coarser zooms, or wait for older exports to expire.'
    : '';
  el.submit.disabled = !estimate || submitting || short;
}
el.description.addEventListener('input', onChange);
el.callbacks.addEventListener('input', onChange);
el.priority.addEventListener('input', onChange);

// ---------- submit ----------
el.form.addEventListener('submit', (ev) => { ev.preventDefault(); void submit(); });
async function submit(): Promise<void> {
  if (el.submit.disabled) return; // no estimate yet, or it does not fit
  const { body: b } = body();
  if (!b || !estimate || estimate.key !== JSON.stringify(b)) return;
  clearErrors();
  submitting = true;
  renderSubmit();
  el.submitInfo.textContent = 'Submitting…';
  sent = el.whole.checked ? [] : [...selections];
  try {
    const ans = await api.export(b);
    if (ans.status === 'Completed') {
      const gpkg = ans.artifacts.find((a) => a.type === 'GPKG');
      const name = document.createElement('span');
      name.className = 'pkg';
      name.textContent = gpkg?.name ?? ans.jobId;
      el.submitInfo.replaceChildren('Ready from an earlier export: ', name, ` (${fmtBytes(ans.fileSize)}), see “Your exports”.`);
    } else {
      el.submitInfo.textContent = ans.isDuplicated
        ? 'The same export is already running; you were added to it. Follow it in “Your exports”.'
        : 'Export started; follow it in “Your exports”.';
    }
    freshJob = ans.jobId;
    pollNow();
  } catch (e) {
    el.submitInfo.textContent = '';
    showApiError(e, 'The export');
  } finally {
    submitting = false;
    renderSubmit();
    void loadStorage(); // the new job reserved its estimate
  }
}

// ---------- auth ----------
/**
 * auth is what the page knows of its token: none, not yet answered by the API, accepted by
 * it, or refused. The header says "Signed in" only once the API has accepted the token.
 */
let auth: 'none' | 'checking' | 'accepted' | 'refused' = 'none';
/** needSignIn shows the sign-in box; a message says why the token was refused, there alone. */
function needSignIn(message: string): void {
  if (message) {
    auth = 'refused';
    clearTimeout(pollTimer);
    // Other places that would tell the same refusal stay quiet.
    $('layer-error').textContent = '';
    el.jobsStatus.textContent = '';
  }
  el.signin.hidden = false;
  el.tokenError.textContent = message;
  renderAuth();
}
/** accepted records that the API answered the token. */
function accepted(): void {
  if (auth !== 'checking') return;
  auth = 'accepted';
  renderAuth();
}
function renderAuth(): void {
  el.authState.replaceChildren();
  const t = getToken();
  if (!t) auth = 'none';
  if (auth === 'none') { el.authState.textContent = 'Not signed in.'; return; }
  if (auth === 'refused') { el.authState.textContent = 'Not signed in: the token was refused.'; return; }
  if (auth === 'checking') { el.authState.textContent = 'Checking the token…'; return; }
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
  auth = 'checking';
  el.tokenInput.value = '';
  el.tokenError.textContent = '';
  el.signin.hidden = true;
  renderAuth();
  void loadLayers();
  void loadStorage();
  pollNow();
});

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
    accepted();
    if (failures > 0) el.jobsStatus.textContent = '';
    failures = 0;
    renderJobs(list.jobs);
  } catch (e) {
    failures++;
    delay = Math.min(2000 * 2 ** failures, 30000);
    if (e instanceof ApiError && e.status === 401) { needSignIn(describe(e, 'Listing the exports')); return; }
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
  // A job that appeared, changed its status or went away changed the free space too.
  let changed = false;
  for (const j of jobs) {
    seen.add(j.id);
    let row = rows.get(j.id);
    if (!row) { row = new JobRow(j.id); rows.set(j.id, row); }
    if (row.status() !== j.status) changed = true;
    row.update(j);
    // Keep the server's order without recreating rows (focus survives polling).
    const want: ChildNode | null = prev ? prev.nextSibling : el.jobsList.firstChild;
    if (want !== row.li) el.jobsList.insertBefore(row.li, want);
    prev = row.li;
  }
  for (const [id, row] of rows) if (!seen.has(id)) { row.li.remove(); rows.delete(id); changed = true; }
  if (changed) void loadStorage();
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
  private metaLink = document.createElement('a');
  private copyBtn = document.createElement('button');
  private cancelBtn = document.createElement('button');
  private showBtn = document.createElement('button');
  // Cancel asks first: the row shows the question and its two answers in place of the button.
  private confirming = false;
  private confirmText = document.createElement('span');
  private confirmYes = document.createElement('button');
  private confirmNo = document.createElement('button');
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
    this.link.dataset.link = 'package';
    this.metaLink.rel = 'noopener'; this.metaLink.dataset.link = 'metadata'; this.metaLink.className = 'meta-link';
    this.metaLink.textContent = 'Metadata (JSON)';
    this.metaLink.title = 'The layer, the request, the tiles per zoom and the package\'s SHA-256';
    this.copyBtn.addEventListener('click', () => void this.copy());
    this.confirmText.className = 'confirm'; this.confirmText.textContent = 'Cancel this export? What it made so far is discarded.';
    this.confirmYes.type = 'button'; this.confirmYes.textContent = 'Yes, cancel it'; this.confirmYes.dataset.action = 'confirm-cancel';
    this.confirmNo.type = 'button'; this.confirmNo.textContent = 'No, keep it'; this.confirmNo.dataset.action = 'keep';
    this.cancelBtn.dataset.action = 'cancel';
    this.cancelBtn.addEventListener('click', () => this.confirm(true));
    this.confirmNo.addEventListener('click', () => this.confirm(false));
    this.confirmYes.addEventListener('click', () => void this.cancel());
    this.showBtn.addEventListener('click', () => { if (this.job) map.showJob(this.job.result?.bbox ?? this.job.bbox); });
    this.li.append(head, this.cached, this.progress, this.progressText, this.meta, this.actions, this.error);
  }

  /** status is the job's status as last shown, undefined before the first. */
  status(): Job['status'] | undefined { return this.job?.status; }

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
    let progress = `${j.percentage} % — ${fmtNum(j.tilesDone)} of ${fmtNum(j.tilesTotal)} tiles`;
    if (running && j.etaSeconds !== undefined) progress += ` · about ${fmtDuration(j.etaSeconds)} left`;
    if (running && j.batchesRetrying) {
      progress += ` · ${fmtNum(j.batchesRetrying)} ${j.batchesRetrying === 1 ? 'batch' : 'batches'} waiting to be retried`;
    }
    this.progressText.textContent = progress;
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
      // The metadata JSON lies beside the package: the same name ending in .json.
      const meta = downloadURL(j.result.fileUri.replace(/\.gpkg$/, '.json'));
      if (this.metaLink.href !== meta) this.metaLink.href = meta;
      this.metaLink.setAttribute('download', `${j.result.packageName || j.packageName}.json`);
      children.push(this.link, this.metaLink, this.copyBtn);
    }
    if (running) children.push(...(this.confirming ? [this.confirmText, this.confirmYes, this.confirmNo] : [this.cancelBtn]));
    else this.confirming = false;
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

  private confirm(on: boolean): void {
    this.confirming = on;
    if (this.job) this.update(this.job);
    (on ? this.confirmNo : this.cancelBtn).focus();
  }

  private async cancel(): Promise<void> {
    if (!this.job) return;
    this.confirming = false;
    this.confirmYes.disabled = true;
    this.cancelBtn.disabled = true;
    this.error.className = 'error'; this.error.textContent = '';
    try {
      this.update(await api.cancel(this.job.id));
      void loadStorage(); // its reservation is released
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) { needSignIn(describe(e, 'Cancelling')); return; }
      this.error.textContent = e instanceof ApiError && e.status === 403
        ? 'Only the person who started this export can cancel it.'
        : describe(e, 'Cancelling');
    } finally {
      this.confirmYes.disabled = false;
      this.cancelBtn.disabled = false;
      if (this.job) this.update(this.job);
    }
  }
}

// ---------- start ----------
function start(): void {
  if (initToken()) auth = 'checking';
  renderAuth();
  if (!getToken()) { needSignIn(''); return; }
  void loadLayers();
  void loadStorage();
  void poll();
}
start();
