// The map: EPSG:4326 view, the selected layer's imagery (preview tiles the
// trigger serves), a graticule, the layers' footprints, the selection
// (drawn or typed), the snapped export bbox and job bboxes.
import 'ol/ol.css';
import OlMap from 'ol/Map';
import View from 'ol/View';
import Feature from 'ol/Feature';
import { fromExtent } from 'ol/geom/Polygon';
import VectorLayer from 'ol/layer/Vector';
import VectorSource from 'ol/source/Vector';
import Graticule from 'ol/layer/Graticule';
import TileLayer from 'ol/layer/Tile';
import XYZ from 'ol/source/XYZ';
import TileGrid from 'ol/tilegrid/TileGrid';
import Draw, { createBox } from 'ol/interaction/Draw';
import { defaults as defaultControls, ScaleLine, MousePosition } from 'ol/control';
import { createStringXY } from 'ol/coordinate';
import { Fill, Stroke, Style, Text } from 'ol/style';
import type { Extent } from 'ol/extent';
import { tileURL } from './api';
import type { BBox, Layer } from './api';

const RES0 = 0.703125; // degrees per pixel at zoom 0 (internal/grid.Resolution0)
const TILE = 256;

/** exportGrid is the tile grid of exports up to maxZoom: EPSG:4326, 2 × 1 tiles at zoom 0, rows from the north. */
function exportGrid(maxZoom: number): TileGrid {
  return new TileGrid({
    extent: [-180, -90, 180, 90], origin: [-180, 90], tileSize: TILE,
    resolutions: Array.from({ length: maxZoom + 1 }, (_, z) => RES0 / 2 ** z),
  });
}

const footprintStyle = (selected: boolean, invalid: boolean) => (f: Feature) => new Style({
  stroke: new Stroke({ color: invalid ? '#b3261e' : '#0b5cad', width: selected ? 2.5 : 1.2 }),
  fill: new Fill({ color: invalid ? 'rgba(179,38,30,0.08)' : selected ? 'rgba(11,92,173,0.08)' : 'rgba(11,92,173,0.03)' }),
  text: new Text({ text: String(f.get('label') ?? ''), font: '12px system-ui, sans-serif', overflow: true,
    fill: new Fill({ color: '#0b3d73' }), stroke: new Stroke({ color: '#fff', width: 3 }), placement: 'point' }),
});
const selectionStyle = (invalid: boolean) => new Style({
  stroke: new Stroke({ color: invalid ? '#b3261e' : '#e07b00', width: 2, lineDash: [6, 4] }),
  fill: new Fill({ color: invalid ? 'rgba(179,38,30,0.12)' : 'rgba(224,123,0,0.06)' }),
});
const snappedStyle = new Style({ stroke: new Stroke({ color: '#1a7f37', width: 2 }), fill: new Fill({ color: 'rgba(26,127,55,0.15)' }) });
const jobStyle = new Style({ stroke: new Stroke({ color: '#6e40c9', width: 2, lineDash: [2, 3] }) });

export class ExportMap {
  private footprints = new VectorSource();
  private selection = new VectorSource();
  private snapped = new VectorSource();
  private jobBox = new VectorSource();
  private selectionLayer: VectorLayer<VectorSource>;
  private footprintLayer: VectorLayer<VectorSource>;
  private draw: Draw;
  private map: OlMap;
  private selectedLayer = '';
  private preview = new TileLayer({ opacity: 0.9 });
  private previewCounts = { loaded: 0, failed: 0 };

  constructor(target: string, private onDrawn: (b: BBox) => void, private onDrawActive: (active: boolean) => void) {
    this.footprintLayer = new VectorLayer({ source: this.footprints });
    this.selectionLayer = new VectorLayer({ source: this.selection, style: selectionStyle(false) });
    this.map = new OlMap({
      target,
      layers: [
        this.preview,
        new Graticule({ strokeStyle: new Stroke({ color: 'rgba(0,0,0,0.18)', width: 1 }), showLabels: true, wrapX: false }),
        this.footprintLayer,
        new VectorLayer({ source: this.jobBox, style: jobStyle }),
        new VectorLayer({ source: this.snapped, style: snappedStyle }),
        this.selectionLayer,
      ],
      view: new View({ projection: 'EPSG:4326', center: [0, 0], zoom: 2, extent: [-180, -90, 180, 90], constrainOnlyCenter: true }),
      controls: defaultControls().extend([
        new ScaleLine({ units: 'metric' }),
        new MousePosition({ coordinateFormat: createStringXY(5), projection: 'EPSG:4326' }),
      ]),
    });
    this.setFootprintStyle(false);
    this.draw = new Draw({ source: new VectorSource(), type: 'Circle', geometryFunction: createBox() });
    this.draw.setActive(false);
    this.draw.on('drawend', (ev) => {
      const e = ev.feature.getGeometry()!.getExtent();
      this.setDrawing(false);
      this.onDrawn(clampBBox([e[0], e[1], e[2], e[3]]));
    });
    this.map.addInteraction(this.draw);
    document.addEventListener('keydown', (ev) => { if (ev.key === 'Escape' && this.draw.getActive()) this.setDrawing(false); });
  }

  setLayers(layers: Layer[]): void {
    this.footprints.clear();
    for (const l of layers) {
      const f = new Feature(fromExtent(l.footprint));
      f.setId(l.id);
      f.set('label', `${l.productId} ${l.version}`);
      this.footprints.addFeature(f);
    }
  }

  selectLayer(id: string, fit: boolean): void {
    this.selectedLayer = id;
    this.setFootprintStyle(false);
    const f = this.footprints.getFeatureById(id);
    if (fit && f) this.fit(f.getGeometry()!.getExtent());
  }

  /**
   * setPreview shows the imagery of layer l beneath the footprints, from the
   * trigger's preview tiles, or none. Only tiles of the layer's footprint and
   * zooms are asked for: the trigger answers 404 for the others. The map's
   * data-preview-loaded and data-preview-failed attributes count tiles drawn
   * and failed.
   */
  setPreview(l: Layer | undefined): void {
    this.previewCounts = { loaded: 0, failed: 0 };
    this.showPreviewCounts();
    if (!l) { this.preview.setSource(null); return; }
    const [w, s, e, n] = l.footprint;
    const source = new XYZ({
      projection: 'EPSG:4326', tileGrid: exportGrid(l.maxZoom), wrapX: false, transition: 0,
      tileUrlFunction: ([z, x, y]) => {
        const size = (RES0 / 2 ** z) * TILE;
        const west = -180 + x * size; const north = 90 - y * size;
        // Tiles that share area with the footprint, as the trigger counts them.
        if (west >= e || west + size <= w || north <= s || north - size >= n) return undefined;
        return tileURL(l.id, z, x, y);
      },
    });
    const counts = this.previewCounts;
    source.on('tileloadend', () => { counts.loaded++; this.showPreviewCounts(); });
    source.on('tileloaderror', () => { counts.failed++; this.showPreviewCounts(); });
    this.preview.setExtent(l.footprint);
    this.preview.setSource(source);
  }
  private showPreviewCounts(): void {
    const t = this.map.getTargetElement();
    if (!t) return;
    t.dataset.previewLoaded = String(this.previewCounts.loaded);
    t.dataset.previewFailed = String(this.previewCounts.failed);
  }

  /** setFootprintStyle marks the selected layer's footprint, red when the bbox missed it. */
  setFootprintStyle(invalid: boolean): void {
    this.footprintLayer.setStyle((f) => footprintStyle(f.getId() === this.selectedLayer, invalid && f.getId() === this.selectedLayer)(f as Feature));
  }

  setSelection(b: BBox | null, invalid = false): void {
    this.selection.clear();
    this.selectionLayer.setStyle(selectionStyle(invalid));
    if (b && !inverted(b)) this.selection.addFeature(new Feature(fromExtent(b)));
  }

  setSnapped(b: BBox | null): void {
    this.snapped.clear();
    if (b && !inverted(b)) this.snapped.addFeature(new Feature(fromExtent(b)));
  }

  showJob(b: BBox | null): void {
    this.jobBox.clear();
    if (b && !inverted(b)) { this.jobBox.addFeature(new Feature(fromExtent(b))); this.fit(b); }
  }

  fit(e: Extent): void {
    this.map.getView().fit(e, { padding: [40, 40, 40, 40], maxZoom: 18 });
  }

  setDrawing(on: boolean): void {
    this.draw.setActive(on);
    this.map.getTargetElement()?.style.setProperty('cursor', on ? 'crosshair' : '');
    this.onDrawActive(on);
  }
  isDrawing(): boolean { return this.draw.getActive(); }
}

/** inverted is true for a bbox whose minimum lies beyond its maximum, as while corners are typed: there is nothing to draw. */
function inverted(b: BBox): boolean { return b[0] > b[2] || b[1] > b[3]; }

export function clampBBox(b: BBox): BBox {
  return [Math.max(-180, b[0]), Math.max(-90, b[1]), Math.min(180, b[2]), Math.min(90, b[3])];
}
