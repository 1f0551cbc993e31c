// The trigger's JSON API, as described by trigger/openapi.yaml. Every call
// carries the session's token as a Bearer header. Paths are relative to the
// page, so the tool works behind a proxy that mounts the trigger under a prefix.

export type BBox = [number, number, number, number];

export interface Layer {
  id: string; productId: string; productType: string; version: string; description?: string;
  footprint: BBox; maxResolution: number; maxZoom: number; sourceKind: string; tileFormat: string;
}
/** Geometry is a GeoJSON Polygon or MultiPolygon in EPSG:4326 longitude, latitude. */
export type Geometry =
  | { type: 'Polygon'; coordinates: number[][][] }
  | { type: 'MultiPolygon'; coordinates: number[][][][] };
/** AreaFeature is one feature of an /export's roi: an area and its resolution range in degrees per pixel. */
export interface AreaFeature {
  type: 'Feature'; geometry: Geometry; properties: { minResolutionDeg: number; maxResolutionDeg: number };
}
/** AreaBody is the body of POST /export and of its POST /estimate; without roi, the layer's whole footprint. */
export interface AreaBody {
  dbId: string; roi?: { type: 'FeatureCollection'; features: AreaFeature[] }; callbackURLs: string[];
  crs: 'EPSG:4326'; priority: number; description?: string;
}
export interface ZoomTiles { zoom: number; tiles: number }
/** AreaEstimate is POST /estimate's answer to an AreaBody: the total, and each feature's own coverage. */
export interface AreaEstimate {
  dbId: string; crs: string; bbox: BBox; maxZoom: number; tilesTotal: number; tilesByZoom: ZoomTiles[];
  estimatedBytes: number; packageName: string;
  features: { index: number; minZoom: number; maxZoom: number; tiles: number; estimatedBytes: number }[];
  quotaBytes?: number; quotaAvailableBytes?: number;
}
export interface JobResult {
  fileUri: string; expirationTime: string; fileSize: number; dbId: string; packageName: string; bbox: BBox;
  targetResolution: number; requestId: string; success: boolean; errorReason?: string;
}
/** ExportAnswer is POST /export's answer: a new or joined job, or a finished package from the cache. */
export type ExportAnswer =
  | { status: 'In-Progress'; jobId: string; isDuplicated: boolean; percentage: number }
  | { status: 'Completed'; jobId: string; fileSize: number; expirationTime: string;
      artifacts: { name: string; url: string; size: number; type: 'GPKG' | 'METADATA' }[] };
export type JobStatus = 'In-Progress' | 'Completed' | 'Failed' | 'Cancelled' | 'Expired';
export interface Job {
  id: string; status: JobStatus; percentage: number; tilesDone: number; tilesTotal: number; dbId: string;
  zoom: number; bbox: BBox; priority: number; packageName: string; taskIds: string[]; reason?: string;
  /** fromCache: this caller's request was answered from a package an earlier export had made. */
  fromCache: boolean;
  /** etaSeconds: the seconds to the last tile at the job's recent rate, once that is meaningful. */
  etaSeconds?: number;
  /** batchesRetrying: batches waiting to run again (a failed attempt, or a worker that died). */
  batchesRetrying?: number;
  estimatedBytes: number; createdAt: string; updatedAt: string; completedAt?: string; expiresAt?: string; result?: JobResult;
}
export interface JobList { jobs: Job[]; nextOffset: number | null }
/**
 * Storage is GET /storage in bytes: with a quota, what is left of it and the quota; else the
 * package storage's free space and size; both null where neither is known (S3 without a quota).
 */
export interface Storage { free: number | null; size: number | null }

/** ApiError is an answer other than 2xx, or no answer at all (status 0). */
export class ApiError extends Error {
  constructor(public status: number, message: string, public retryAfter?: number) { super(message); }
  /** fields splits a 400 message "field: reason; field: reason" by field (roi.features[2].geometry is one). */
  fields(): { field: string; reason: string }[] {
    const out: { field: string; reason: string }[] = [];
    for (const part of this.message.split('; ')) {
      const m = /^([A-Za-z]+(?:\[\d+\])?(?:\.[A-Za-z]+(?:\[\d+\])?)*): (.*)$/s.exec(part);
      // A reason may hold "; " itself: a part that names no field goes on the reason before it.
      if (m) out.push({ field: m[1], reason: m[2] });
      else if (out.length > 0) out[out.length - 1].reason += '; ' + part;
      else out.push({ field: '', reason: part });
    }
    return out;
  }
}

const TOKEN_KEY = 'exporter.token';
let token = '';

/** initToken takes ?token= from the address (and removes it there) or the session's token. */
export function initToken(): string {
  const url = new URL(location.href);
  const fromURL = url.searchParams.get('token');
  if (fromURL) {
    url.searchParams.delete('token');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
    setToken(fromURL);
  } else {
    token = sessionStorage.getItem(TOKEN_KEY) ?? '';
  }
  return token;
}
export function setToken(t: string): void {
  token = t.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
}
export function getToken(): string { return token; }

/** subjectOf reads the token's sub claim for display; the server checks the token. */
export function subjectOf(t: string): string {
  try {
    const part = t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
    return typeof claims.sub === 'string' ? claims.sub : '';
  } catch { return ''; }
}

/** tileURL is the address of a preview tile of a layer (rows from the north), with the token, as image loads cannot send headers. */
export function tileURL(layerID: string, z: number, x: number, y: number): string {
  return `layers/${encodeURIComponent(layerID)}/tiles/${z}/${x}/${y}?token=${encodeURIComponent(token)}`;
}

/**
 * downloadURL is the link of a package, with the token so it works in a browser: the path of
 * the job's fileUri below /downloads/ (its job id and package name), on this page's server.
 */
export function downloadURL(fileUri: string): string {
  const path = new URL(fileUri).pathname;
  const u = new URL(path.slice(path.lastIndexOf('/downloads/') + 1), document.baseURI);
  u.searchParams.set('token', token);
  return u.toString();
}

async function call<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  let resp: Response;
  try {
    resp = await fetch(path, {
      method, signal, cache: 'no-store',
      headers: { Authorization: 'Bearer ' + token, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'The server does not answer; it may be restarting.');
  }
  const text = await resp.text();
  let data: unknown;
  try { data = text ? JSON.parse(text) : undefined; } catch { data = undefined; }
  if (!resp.ok) {
    const ra = Number(resp.headers.get('Retry-After'));
    const msg = data && typeof (data as { message?: unknown }).message === 'string' ? (data as { message: string }).message : '';
    // A 500 may carry a stack trace in debug mode: it is never shown.
    throw new ApiError(resp.status, resp.status >= 500 && resp.status !== 503 && resp.status !== 507 ? '' : msg,
      Number.isFinite(ra) && ra > 0 ? ra : undefined);
  }
  if (data === undefined) throw new ApiError(resp.status, 'The server sent an answer that is not JSON.');
  return data as T;
}

export const api = {
  layers: () => call<Layer[]>('GET', 'layers'),
  estimate: (b: AreaBody, signal?: AbortSignal) => call<AreaEstimate>('POST', 'estimate', b, signal),
  export: (b: AreaBody) => call<ExportAnswer>('POST', 'export', b),
  jobs: () => call<JobList>('GET', 'jobs?limit=50'),
  job: (id: string) => call<Job>('GET', 'jobs/' + encodeURIComponent(id)),
  cancel: (id: string) => call<Job>('DELETE', 'jobs/' + encodeURIComponent(id)),
  storage: () => call<Storage>('GET', 'storage'),
};

/** describe says in words what an error means for the person using the page. */
export function describe(e: unknown, what: string): string {
  if (!(e instanceof ApiError)) return `${what} failed unexpectedly.`;
  const m = e.message;
  switch (e.status) {
    case 0: return m;
    case 400: return m || `${what}: the request was not accepted.`;
    case 401: return `Your token was not accepted${m ? ` (${m})` : ''}. Sign in again with a valid token.`;
    case 403: return `Your token does not allow this${m ? ` (${m})` : ''}.`;
    case 404: return m || `${what}: not found.`;
    case 409: return m || `${what}: the job has already ended.`;
    case 413: return `The request is too large${m ? ` (${m})` : ''}; use fewer or shorter callback URLs.`;
    case 429: return `Too many requests${e.retryAfter ? `; try again in ${e.retryAfter} s` : '; wait a moment and try again'}.`;
    case 503: return `The service is busy or its queue is unavailable${e.retryAfter ? `; try again in ${e.retryAfter} s` : ''}.`;
    case 507: return `Not enough storage quota: ${m || 'the export does not fit in what is left'}. Choose a smaller area or a coarser resolution, or wait for older exports to expire.`;
    default: return e.status >= 500 ? `${what} failed on the server (error ${e.status}). Try again later.` : `${what} failed (error ${e.status})${m ? `: ${m}` : ''}.`;
  }
}
