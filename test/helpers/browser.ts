/**
 * A real browser for tests of report.html: Debian's Chromium (`apt-get install chromium`, which
 * .ci/run does) driven by playwright-core, with a fresh profile and the flags that work in these
 * sandboxes. Tests that need it skip with CHROMIUM_SKIP_NOTE where it is absent.
 *
 * openAndShoot loads a page, records console errors, page errors and every request that is not
 * the file itself, and returns a full-page screenshot (decoded here: decodePng) with each chart's
 * box.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inflateSync } from 'node:zlib';

export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
export const chromiumAvailable = existsSync(CHROMIUM);
export const CHROMIUM_SKIP_NOTE = `Chromium not found at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`;

const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface PageShot {
  png: Buffer;
  image: DecodedImage;
  /** Boxes (CSS pixels = screenshot pixels at scale 1) of each `figure.chart svg`, by data-chart id. */
  charts: Map<string, { x: number; y: number; width: number; height: number }>;
  consoleErrors: string[];
  /** URLs the page asked for besides itself (a self-contained page asks for none). */
  requests: string[];
}

export async function openAndShoot(file: string, opts: { width?: number } = {}): Promise<PageShot> {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'rrec-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: opts.width ?? 1280, height: 900 }, deviceScaleFactor: 1 });
  try {
    const page = await context.newPage();
    const consoleErrors: string[] = [];
    const requests: string[] = [];
    const url = pathToFileURL(file).href;
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    page.on('request', (r) => {
      if (r.url() !== url) requests.push(r.url());
    });
    await page.goto(url, { waitUntil: 'load' });
    const charts = new Map<string, { x: number; y: number; width: number; height: number }>();
    for (const fig of await page.locator('figure.chart').all()) {
      const id = (await fig.getAttribute('data-chart')) ?? '?';
      const box = await fig.locator('svg').first().boundingBox();
      if (box) charts.set(id, box);
    }
    const png = await page.screenshot({ fullPage: true, type: 'png' });
    return { png, image: decodePng(png), charts, consoleErrors, requests };
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

export interface DecodedImage {
  width: number;
  height: number;
  /** RGBA, 4 bytes a pixel, row-major. */
  rgba: Uint8Array;
}

/** Decodes an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium's screenshots are). */
export function decodePng(png: Buffer): DecodedImage {
  if (png.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
  let pos = 8;
  let width = 0, height = 0, colorType = 0;
  const idat: Buffer[] = [];
  while (pos < png.length) {
    const len = png.readUInt32BE(pos);
    const type = png.toString('ascii', pos + 4, pos + 8);
    const data = png.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[12] !== 0) throw new Error(`PNG: bit depth ${data[8]}, interlace ${data[12]} not supported`);
      colorType = data[9]!;
      if (colorType !== 2 && colorType !== 6) throw new Error(`PNG: color type ${colorType} not supported`);
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    pos += 12 + len;
  }
  const bpp = colorType === 6 ? 4 : 3;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const out = new Uint8Array(width * height * 4);
  const prev = new Uint8Array(stride);
  const cur = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? cur[i - bpp]! : 0, b = prev[i]!, c = i >= bpp ? prev[i - bpp]! : 0;
      let v = line[i]!;
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      cur[i] = v & 0xff;
    }
    for (let x = 0; x < width; x++) {
      out[(y * width + x) * 4] = cur[x * bpp]!;
      out[(y * width + x) * 4 + 1] = cur[x * bpp + 1]!;
      out[(y * width + x) * 4 + 2] = cur[x * bpp + 2]!;
      out[(y * width + x) * 4 + 3] = bpp === 4 ? cur[x * bpp + 3]! : 255;
    }
    prev.set(cur);
  }
  return { width, height, rgba: out };
}

/** Pixels in a box that are not near-white, and those that are coloured (not grey: data marks, not axes). */
export function inkIn(img: DecodedImage, box: { x: number; y: number; width: number; height: number }): { total: number; ink: number; colored: number } {
  let ink = 0, colored = 0, total = 0;
  const x0 = Math.max(0, Math.floor(box.x)), y0 = Math.max(0, Math.floor(box.y));
  const x1 = Math.min(img.width, Math.ceil(box.x + box.width)), y1 = Math.min(img.height, Math.ceil(box.y + box.height));
  for (let y = y0; y < y1; y++)
    for (let x = x0; x < x1; x++) {
      const i = (y * img.width + x) * 4;
      const r = img.rgba[i]!, g = img.rgba[i + 1]!, b = img.rgba[i + 2]!;
      total++;
      if (Math.min(r, g, b) < 235) ink++;
      if (Math.max(r, g, b) - Math.min(r, g, b) > 60) colored++;
    }
  return { total, ink, colored };
}
