// shpjs ships no types; this is the part of its API the page uses (shpjs 6, lib/index.js).
declare module 'shpjs' {
  interface ShpCollection { type: 'FeatureCollection'; features: unknown[]; fileName?: string }
  /** getShapefile reads a zipped shapefile (its .shp, .dbf, .prj and .cpg), reprojected to WGS 84 when a .prj says how. */
  export default function getShapefile(zip: ArrayBuffer | Uint8Array): Promise<ShpCollection | ShpCollection[]>;
}
