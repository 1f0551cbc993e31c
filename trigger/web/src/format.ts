// How the page writes numbers, sizes, resolutions and dates: thousands
// separators and human units everywhere a person reads them.

const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** fmtNum writes a count with thousands separators: 1,234,567. */
export const fmtNum = (n: number): string => intFmt.format(n);

const sizeUnits = ['kB', 'MB', 'GB', 'TB'];
/** fmtBytes writes a size in decimal units: 950 bytes, 12.3 kB, 1.20 GB. */
export function fmtBytes(n: number): string {
  if (n < 1000) return `${fmtNum(n)} bytes`;
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < sizeUnits.length - 1) { v /= 1000; i++; }
  return `${new Intl.NumberFormat('en-US', { maximumSignificantDigits: 3 }).format(v)} ${sizeUnits[i]}`;
}

/** fmtDuration writes a duration in seconds as a person says it: 45 s, 3 min, 1 h 20 min. */
export function fmtDuration(s: number): string {
  if (s < 60) return `${Math.max(1, Math.round(s))} s`;
  const min = Math.round(s / 60);
  if (min < 60) return `${min} min`;
  return `${Math.floor(min / 60)} h${min % 60 ? ` ${min % 60} min` : ''}`;
}

/** fmtDeg writes degrees per pixel with four significant digits. */
export const fmtDeg = (d: number): string => d.toPrecision(4);

/** fmtMetres writes a length in km, m or cm with three significant digits. */
export function fmtMetres(m: number): string {
  const p = (v: number) => new Intl.NumberFormat('en-US', { maximumSignificantDigits: 3 }).format(v);
  if (m >= 1000) return `${p(m / 1000)} km`;
  if (m >= 1) return `${p(m)} m`;
  return `${p(m * 100)} cm`;
}

/** fmtCoord writes a coordinate to seven decimals (about 1 cm), without trailing zeros. */
export const fmtCoord = (v: number): string => String(Math.round(v * 1e7) / 1e7);

/** fmtBBox writes west, south, east, north to five decimals. */
export const fmtBBox = (b: number[]): string => b.map((v) => v.toFixed(5)).join(', ');

/** fmtDate writes a date-time (or a date) in the reader's locale. */
export function fmtDate(s?: string): string {
  if (!s) return '';
  const d = new Date(s.length === 10 ? s + 'T00:00:00Z' : s);
  return Number.isNaN(d.getTime()) ? s : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: s.length === 10 ? undefined : 'short' });
}

/** groupDigits puts thousands separators into the whole numbers of 4 digits or more in a message from the API. */
export const groupDigits = (s: string): string => s.replace(/(?<![\d.])\d{4,}(?![\d.])/g, (d) => fmtNum(Number(d)));
