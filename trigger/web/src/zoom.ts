// The export grid's zooms (internal/grid): EPSG:4326, 256 × 256 px tiles,
// zoom 0 is 2 × 1 tiles; degrees per pixel at zoom z = 0.703125 / 2^z.
import type { BBox } from './api';

export const RES0 = 0.703125; // degrees per pixel at zoom 0 (internal/grid.Resolution0)
export const TILE = 256;
const EARTH_RADIUS = 6378137;

/** resolution is the grid's degrees per pixel at zoom z: what minResolutionDeg and maxResolutionDeg carry. */
export const resolution = (z: number): number => RES0 / 2 ** z;

/**
 * zoomOf is the zoom of a resolution as the server maps it: floor(log2(RES0 / res)) with a
 * relative tolerance of 1e-9, so truncated decimal forms of the table's values map exactly.
 * NaN for a resolution that is not a positive number.
 */
export function zoomOf(res: number): number {
  if (!(res > 0) || !Number.isFinite(res)) return NaN;
  return Math.floor(Math.log2((RES0 / res) * (1 + 1e-9)));
}

/**
 * metresPerPixel is the east–west size of a pixel at zoom z and latitude lat (taken within
 * ±90°, so that a selection drawn past a pole still gets a size, not a negative one).
 */
export const metresPerPixel = (z: number, lat: number): number =>
  resolution(z) * (Math.PI / 180) * EARTH_RADIUS * Math.cos((Math.min(90, Math.max(-90, lat)) * Math.PI) / 180);

/**
 * bboxTilesByZoom counts, at zooms 0..maxZoom, the tiles whose squares share area with b: an
 * upper bound of any area within b, computed without asking the server.
 */
export function bboxTilesByZoom(b: BBox, maxZoom: number): number[] {
  const out: number[] = [];
  for (let z = 0; z <= maxZoom; z++) {
    const size = resolution(z) * TILE;
    const cols = Math.ceil((b[2] + 180) / size) - Math.floor((b[0] + 180) / size);
    const rows = Math.ceil((90 - b[1]) / size) - Math.floor((90 - b[3]) / size);
    out.push(Math.max(1, cols) * Math.max(1, rows));
  }
  return out;
}

/**
 * SIZE_BUDGET is the largest estimate a new selection's default zoom may give: 500 MB.
 * A package of that size downloads in under a minute on a 100 Mbit/s line, fits any
 * disk or phone it goes to, and renders in minutes; one finer zoom is four times as
 * large, so a person who needs it chooses it knowingly. The old default, the layer's
 * finest zoom, proposed 3 GB for a 25 km box.
 */
export const SIZE_BUDGET = 500e6;

/**
 * finestWithin is the finest zoom, from 0 up to the end of tilesByZoom, whose export from
 * minZoom (every zoom from minZoom to it) is at most budget bytes at bytesPerTile; 0 when even
 * zoom 0 is over, so that there is always a choice.
 */
export function finestWithin(tilesByZoom: number[], bytesPerTile: number, minZoom = 0, budget = SIZE_BUDGET): number {
  let sum = 0;
  let best = minZoom;
  for (let z = minZoom; z < tilesByZoom.length; z++) {
    sum += tilesByZoom[z];
    if (sum * bytesPerTile > budget) break;
    best = z;
  }
  return best;
}
