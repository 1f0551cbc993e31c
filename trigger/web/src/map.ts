// The map: EPSG:4326 view, the selected layer's imagery (preview tiles the
// trigger serves), a graticule, the layers' footprints, the selections
// (drawn, typed or imported; the active one's vertices can be moved) and
// job bboxes.
import 'ol/ol.css';
import OlMap from 'ol/Map';
import View from 'ol/View';
import Feature from 'ol/Feature';
import Collection from 'ol/Collection';
import Polygon, { fromExtent } from 'ol/geom/Polygon';
import type MultiPolygon from 'ol/geom/MultiPolygon';
import MultiPoint from 'ol/geom/MultiPoint';
import VectorLayer from 'ol/layer/Vector';
import VectorSource from 'ol/source/Vector';
import Graticule from 'ol/layer/Graticule';
import TileLayer from 'ol/layer/Tile';
import XYZ from 'ol/source/XYZ';
import TileGrid from 'ol/tilegrid/TileGrid';
import Draw, { createBox } from 'ol/interaction/Draw';
import Modify from 'ol/interaction/Modify';
import { defaults as defaultControls, ScaleLine, MousePosition } from 'ol/control';
import { createStringXY } from 'ol/coordinate';
import { Circle as CircleStyle, Fill, Stroke, Style, Text } from 'ol/style';
import type { Extent } from 'ol/extent';
import { tileURL } from './api';
import type { BBox, Layer } from './api';
import { RES0, TILE } from './zoom';

/** DrawMode is what a click on the map draws. */
export type DrawMode = 'rectangle' | 'polygon' | null;

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
/** vertexStyle marks the vertices that can be moved, and the one under the pointer. */
const vertexStyle = new Style({ image: new CircleStyle({ radius: 5, fill: new Fill({ color: '#fff' }), stroke: new Stroke({ color: '#e07b00', width: 2 }) }) });
/** selectionStyle draws a selection: orange dashed, solid and thicker when active, red when the API refused it; its number at its centre. */
const selectionStyle = (f: Feature) => {
  const invalid = Boolean(f.get('invalid'));
  const active = Boolean(f.get('active'));
  const color = invalid ? '#b3261e' : '#e07b00';
  const styles = [
    new Style({
      stroke: new Stroke({ color, width: active ? 3 : 2, lineDash: active ? undefined : [6, 4] }),
      fill: new Fill({ color: invalid ? 'rgba(179,38,30,0.12)' : active ? 'rgba(224,123,0,0.14)' : 'rgba(224,123,0,0.06)' }),
      text: new Text({ text: String(f.get('label') ?? ''), font: 'bold 13px system-ui, sans-serif', overflow: true,
        fill: new Fill({ color }), stroke: new Stroke({ color: '#fff', width: 3 }) }),
    }),
  ];
  if (f.get('editing')) {
    const vertices = vertexStyle.clone();
    vertices.setGeometry((g) => {
      const geom = g.getGeometry() as Polygon | MultiPolygon;
      const rings = geom instanceof Polygon ? geom.getCoordinates() : geom.getCoordinates().flat();
      return new MultiPoint(rings.flat());
    });
    styles.push(vertices);
  }
  return styles;
};
const jobStyle = new Style({ stroke: new Stroke({ color: '#6e40c9', width: 2, lineDash: [2, 3] }) });

/** MapEvents are what the map tells the form. */
export interface MapEvents {
  /** drawn: a rectangle or polygon was drawn. */
  drawn(kind: 'rectangle' | 'polygon', g: Polygon): void;
  /** modeChanged: drawing started or stopped (Esc, or a shape finished). */
  modeChanged(mode: DrawMode): void;
  /** modified: the vertices of the selection with this id were moved. */
  modified(id: number): void;
  /** picked: the selection with this id was clicked. */
  picked(id: number): void;
}

export class ExportMap {
  private footprints = new VectorSource();
  private selections = new VectorSource<Feature<Polygon | MultiPolygon>>();
  private jobBox = new VectorSource();
  private footprintLayer: VectorLayer<VectorSource>;
  private selectionLayer: VectorLayer<VectorSource<Feature<Polygon | MultiPolygon>>>;
  private draws: Record<'rectangle' | 'polygon', Draw>;
  private mode: DrawMode = null;
  private editable = new Collection<Feature<Polygon | MultiPolygon>>();
  private modify: Modify;
  private map: OlMap;
  private selectedLayer = '';
  private preview = new TileLayer({ opacity: 0.9 });
  // keepView: the page was opened at a view of its own (#map=…), which the first layer shown does not replace.
  private keepView = false;
  private previewCounts = { loaded: 0, failed: 0 };

  constructor(target: string, private on: MapEvents) {
    this.footprintLayer = new VectorLayer({ source: this.footprints });
    this.selectionLayer = new VectorLayer({ source: this.selections, style: (f) => selectionStyle(f as Feature) });
    this.map = new OlMap({
      target,
      layers: [
        this.preview,
        new Graticule({ strokeStyle: new Stroke({ color: 'rgba(0,0,0,0.18)', width: 1 }), showLabels: true, wrapX: false }),
        this.footprintLayer,
        new VectorLayer({ source: this.jobBox, style: jobStyle }),
        this.selectionLayer,
      ],
      view: new View({ projection: 'EPSG:4326', center: [0, 0], zoom: 2, extent: [-180, -90, 180, 90], constrainOnlyCenter: true }),
      controls: defaultControls().extend([
        new ScaleLine({ units: 'metric' }),
        new MousePosition({ coordinateFormat: createStringXY(5), projection: 'EPSG:4326' }),
      ]),
    });
    this.setFootprintStyle(false);
    this.keepView = this.restoreView();
    this.map.on('moveend', () => this.saveView());
    this.draws = {
      rectangle: new Draw({ source: new VectorSource(), type: 'Circle', geometryFunction: createBox() }),
      // A polygon ends with a click on its first point or a double click.
      polygon: new Draw({ source: new VectorSource(), type: 'Polygon' }),
    };
    for (const kind of ['rectangle', 'polygon'] as const) {
      const d = this.draws[kind];
      d.setActive(false);
      d.on('drawend', (ev) => {
        const g = ev.feature.getGeometry() as Polygon;
        this.setDrawMode(null);
        this.on.drawn(kind, g);
      });
      this.map.addInteraction(d);
    }
    this.modify = new Modify({ features: this.editable, style: vertexStyle });
    this.modify.on('modifyend', (ev) => {
      for (const f of ev.features.getArray()) this.on.modified(Number(f.getId()));
    });
    this.map.addInteraction(this.modify);
    this.map.on('singleclick', (ev) => {
      if (this.mode) return;
      const f = this.map.forEachFeatureAtPixel(ev.pixel, (f) => f, { layerFilter: (l) => l === this.selectionLayer });
      if (f) this.on.picked(Number(f.getId()));
    });
    document.addEventListener('keydown', (ev) => { if (ev.key === 'Escape' && this.mode) this.setDrawMode(null); });
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

  /**
   * selectLayer marks layer id's footprint and, with fit, shows all of it: unless the layer is
   * the one shown already, or the page was opened at a view of its own (restoreView).
   */
  selectLayer(id: string, fit: boolean): void {
    const other = id !== this.selectedLayer;
    this.selectedLayer = id;
    this.setFootprintStyle(false);
    const f = this.footprints.getFeatureById(id);
    if (fit && other && f && !this.keepView) this.fit(f.getGeometry()!.getExtent());
    this.keepView = false;
  }

  /**
   * restoreView shows the view the address names after #map=zoom/latitude/longitude (as
   * saveView writes it, the form other web maps use), so that a link shows the place it was
   * copied at; it reports whether the address named one.
   */
  private restoreView(): boolean {
    const m = /^#map=([\d.]+)\/(-?[\d.]+)\/(-?[\d.]+)$/.exec(location.hash);
    if (!m) return false;
    const [z, lat, lon] = m.slice(1).map(Number);
    if (![z, lat, lon].every(Number.isFinite) || Math.abs(lat) > 90 || Math.abs(lon) > 180) return false;
    this.map.getView().setCenter([lon, lat]);
    this.map.getView().setZoom(z);
    return true;
  }

  /** saveView writes the current view into the address (#map=…) without a new history entry. */
  private saveView(): void {
    const v = this.map.getView();
    const c = v.getCenter(), z = v.getZoom();
    if (!c || z === undefined) return;
    const hash = `#map=${z.toFixed(2)}/${c[1].toFixed(5)}/${c[0].toFixed(5)}`;
    if (location.hash !== hash) history.replaceState(history.state, '', location.pathname + location.search + hash);
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

  /** addSelection shows a selection's feature, labelled, under its id. */
  addSelection(id: number, f: Feature<Polygon | MultiPolygon>, label: string): void {
    f.setId(id);
    f.set('label', label);
    this.selections.addFeature(f);
  }

  removeSelection(id: number): void {
    const f = this.selections.getFeatureById(id);
    if (!f) return;
    this.editable.remove(f);
    this.selections.removeFeature(f);
  }

  /** setLabel renumbers a selection. */
  setLabel(id: number, label: string): void { this.selections.getFeatureById(id)?.set('label', label); }

  /** setInvalid marks a selection the API refused. */
  setInvalid(id: number, invalid: boolean): void { this.selections.getFeatureById(id)?.set('invalid', invalid); }

  /** setActive highlights one selection (or none) and lets its vertices be moved when editable. */
  setActive(id: number | null, editable: boolean): void {
    for (const f of this.selections.getFeatures()) {
      f.set('active', f.getId() === id);
      f.set('editing', f.getId() === id && editable);
    }
    this.editable.clear();
    const f = id === null ? null : this.selections.getFeatureById(id);
    if (f && editable) this.editable.push(f);
  }

  /** fitSelections shows all the given selections' features. */
  fitSelections(features: Feature<Polygon | MultiPolygon>[]): void {
    if (features.length === 0) return;
    const e = features[0].getGeometry()!.getExtent().slice();
    for (const f of features) {
      const g = f.getGeometry()!.getExtent();
      e[0] = Math.min(e[0], g[0]); e[1] = Math.min(e[1], g[1]); e[2] = Math.max(e[2], g[2]); e[3] = Math.max(e[3], g[3]);
    }
    this.fit(e);
  }

  showJob(b: BBox | null): void {
    this.jobBox.clear();
    if (b && !inverted(b)) { this.jobBox.addFeature(new Feature(fromExtent(b))); this.fit(b); }
  }

  fit(e: Extent): void {
    this.map.getView().fit(e, { padding: [40, 40, 40, 40], maxZoom: 18 });
  }

  /** setDrawMode makes clicks on the map draw a rectangle or a polygon, or nothing. */
  setDrawMode(mode: DrawMode): void {
    this.mode = mode;
    this.draws.rectangle.setActive(mode === 'rectangle');
    this.draws.polygon.setActive(mode === 'polygon');
    this.modify.setActive(mode === null);
    this.map.getTargetElement()?.style.setProperty('cursor', mode ? 'crosshair' : '');
    this.on.modeChanged(mode);
  }
  drawMode(): DrawMode { return this.mode; }
}

/** inverted is true for a bbox whose minimum lies beyond its maximum, as while corners are typed: there is nothing to draw. */
function inverted(b: BBox): boolean { return b[0] > b[2] || b[1] > b[3]; }

export function clampBBox(b: BBox): BBox {
  return [Math.max(-180, b[0]), Math.max(-90, b[1]), Math.min(180, b[2]), Math.min(90, b[3])];
}
