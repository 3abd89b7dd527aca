import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router } from 'express';

/** The repository root, from dist/src/web/page.js. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** index.html and style.css, as written. */
export const PUBLIC_DIR = path.join(ROOT, 'web', 'public');
/** The page's scripts, compiled from web/src by `npm run build` (tsc -p web/tsconfig.json). */
export const SCRIPTS_DIR = path.join(ROOT, 'dist', 'web');

/**
 * Only what the service itself serves: the page may load scripts, styles and data from its own
 * origin and open its own WebSocket, nothing else (no CDN, works offline).
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** GET / (the live view) and GET /app/* (its scripts and styles). Open: the page asks for a token itself. */
export function pageRoutes(): Router {
  const router = Router();
  const headers = (res: express.Response) => {
    res.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    res.set('X-Content-Type-Options', 'nosniff');
  };
  router.get('/', (_req, res) => {
    headers(res);
    res.set('Cache-Control', 'no-cache');
    res.sendFile(path.join(PUBLIC_DIR, 'index.html'));
  });
  const files = { index: false, fallthrough: true, redirect: false, setHeaders: headers } as const;
  router.use('/app', express.static(SCRIPTS_DIR, files), express.static(PUBLIC_DIR, files));
  return router;
}
