// Selections: the areas of an export, each with its own zoom range, and
// reading them from files (GeoJSON, or a zipped shapefile through shpjs).
import Feature from 'ol/Feature';
import GeoJSON from 'ol/format/GeoJSON';
import Polygon from 'ol/geom/Polygon';
import MultiPolygon from 'ol/geom/MultiPolygon';
import shp from 'shpjs';
import type { AreaFeature, BBox, Geometry } from './api';
import { resolution, zoomOf } from './zoom';

export type SelectionKind = 'rectangle' | 'polygon' | 'imported';

/** Selection is one area of the export: its geometry on the map and its zoom range. */
export interface Selection {
  /** id is stable while the page lives: the map feature's id and the list item's data-selection-id. */
  id: number;
  kind: SelectionKind;
  /** name says where it came from: "Rectangle", "Polygon", or the file and the feature's name. */
  name: string;
  feature: Feature<Polygon | MultiPolygon>;
  minZoom: number;
  maxZoom: number;
  /** zoomFrom is who set the zoom range: the page's default (which may still be refined), the file, or the person. */
  zoomFrom: 'default' | 'file' | 'person';
  estimate?: { tiles: number; bytes: number };
  error?: string;
  /** note is something the person should know about it, as that the file asked for finer zooms than the layer has. */
  note?: string;
}

const geojson = new GeoJSON({ dataProjection: 'EPSG:4326', featureProjection: 'EPSG:4326' });

/** toFeature is the roi feature of s: its geometry (right-handed, as RFC 7946 says) and its resolutions. */
export function toFeature(s: Selection): AreaFeature {
  return {
    type: 'Feature',
    geometry: geojson.writeGeometryObject(s.feature.getGeometry()!, { rightHanded: true }) as Geometry,
    properties: { minResolutionDeg: resolution(s.minZoom), maxResolutionDeg: resolution(s.maxZoom) },
  };
}

/** extentOf is the bounding box of a selection. */
export function extentOf(s: Selection): BBox {
  const e = s.feature.getGeometry()!.getExtent();
  return [e[0], e[1], e[2], e[3]];
}

/** isBox tells a polygon that is still an axis-aligned rectangle (after its vertices were moved, say). */
export function isBox(g: Polygon | MultiPolygon): boolean {
  if (!(g instanceof Polygon) || g.getLinearRingCount() !== 1) return false;
  const ring = g.getCoordinates()[0];
  if (ring.length !== 5) return false;
  const [w, s, e, n] = g.getExtent();
  return ring.every(([x, y]) => (x === w || x === e) && (y === s || y === n)) && w < e && s < n;
}

/** Imported is what a file gave: its polygon features and, per feature, the zoom range its properties ask for. */
export interface Imported {
  features: { feature: Feature<Polygon | MultiPolygon>; name: string; minZoom?: number; maxZoom?: number }[];
  /** skipped counts features that are not polygons (points, lines) or have no geometry. */
  skipped: number;
}

/**
 * readFile reads a GeoJSON file (a FeatureCollection, a Feature or a bare geometry) or a
 * zipped shapefile. Coordinates must be longitude, latitude degrees (a shapefile's .prj
 * reprojects them); a feature's properties.minResolutionDeg and maxResolutionDeg, when
 * numbers, give its zoom range. It throws an Error whose message says what is wrong with
 * the file, in words for the person who chose it.
 */
export async function readFile(file: File): Promise<Imported> {
  const bytes = await file.arrayBuffer();
  const head = new Uint8Array(bytes.slice(0, 4));
  let objects: unknown[];
  if (head[0] === 0x50 && head[1] === 0x4b) { // "PK": a zip
    let got;
    try { got = await shp(bytes); } catch (e) {
      throw new Error(`${file.name} is a zip without a readable shapefile (${(e as Error).message}).`);
    }
    objects = Array.isArray(got) ? got : [got];
  } else {
    try { objects = [JSON.parse(new TextDecoder().decode(bytes))]; } catch {
      throw new Error(`${file.name} is neither GeoJSON nor a zipped shapefile.`);
    }
  }
  const out: Imported = { features: [], skipped: 0 };
  const base = file.name.replace(/\.(geo)?json$|\.zip$/i, '');
  for (const obj of objects) {
    let read: Feature[];
    try { read = geojson.readFeatures(obj); } catch (e) {
      throw new Error(`${file.name} is not valid GeoJSON (${(e as Error).message}).`);
    }
    for (const f of read) {
      const g = f.getGeometry();
      if (!(g instanceof Polygon || g instanceof MultiPolygon)) { out.skipped++; continue; }
      const [w, s, e, n] = g.getExtent();
      if (!(w >= -180 && e <= 180 && s >= -90 && n <= 90)) {
        throw new Error(`${file.name}: its coordinates reach ${[w, s, e, n].map((v) => v.toFixed(1)).join(', ')}, beyond longitude and latitude; export it in WGS 84 (EPSG:4326) degrees.`);
      }
      const p = f.getProperties();
      const zoom = (v: unknown) => (typeof v === 'number' ? zoomOf(v) : undefined);
      const label = typeof p.name === 'string' ? p.name : typeof p.NAME === 'string' ? p.NAME : `feature ${out.features.length + out.skipped + 1}`;
      const feature = new Feature(g);
      out.features.push({ feature, name: `${base}: ${label}`, minZoom: zoom(p.minResolutionDeg), maxZoom: zoom(p.maxResolutionDeg) });
    }
  }
  return out;
}
