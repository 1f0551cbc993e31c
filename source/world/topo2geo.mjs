// topo2geo.mjs converts world-atlas's countries TopoJSON of one scale into
// GeoJSON with topojson-client: the land (the countries merged) as one
// MultiPolygon, and the borders between countries as one MultiLineString
// (each shared arc once, coastlines left out). gen.go runs it inside the
// directory npm installed both packages into:
//
//	node topo2geo.mjs 50m > world-50m.json
import {readFileSync} from 'node:fs';
import {feature, mesh} from 'topojson-client';

const scale = process.argv[2];
const topo = JSON.parse(readFileSync(`node_modules/world-atlas/countries-${scale}.json`, 'utf8'));
const land = feature(topo, topo.objects.land);
const borders = mesh(topo, topo.objects.countries, (a, b) => a !== b);
process.stdout.write(JSON.stringify({
  type: 'FeatureCollection',
  features: [
    {type: 'Feature', properties: {kind: 'land'}, geometry: land.features[0].geometry},
    {type: 'Feature', properties: {kind: 'borders'}, geometry: borders},
  ],
}));
