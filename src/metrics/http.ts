import type { Request, RequestHandler } from 'express';
import { Histogram, type Registry } from 'prom-client';
import { METRIC_PREFIX } from './buckets.js';

const HTTP_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/**
 * The route template that served a request: never the raw URL, so ids in paths do not become
 * label values. Requests that matched no route share one label.
 */
function routeOf(req: Request): string {
  const openapi = (req as { openapi?: { openApiRoute?: unknown } }).openapi?.openApiRoute;
  if (typeof openapi === 'string') return openapi;
  const path: unknown = req.route?.path;
  if (typeof path === 'string') return req.baseUrl + path;
  if (path !== undefined) return req.baseUrl + String(path);
  return 'unmatched';
}

/** Express middleware that times every HTTP request by method, route template and status class. */
export function httpMetrics(registry: Registry): RequestHandler {
  const duration = new Histogram({
    name: METRIC_PREFIX + 'http_request_duration_seconds',
    help: 'HTTP requests by method, route template and status class (2xx, 4xx, 5xx), with the time to respond; _count is the request count.',
    labelNames: ['method', 'route', 'status_class'] as const,
    buckets: HTTP_BUCKETS_SECONDS,
    registers: [registry],
  });
  return (req, res, next) => {
    const began = process.hrtime.bigint();
    res.once('finish', () => {
      const seconds = Number(process.hrtime.bigint() - began) / 1e9;
      duration.observe(
        {
          method: METHODS.has(req.method) ? req.method : 'OTHER',
          route: routeOf(req),
          status_class: `${Math.floor(res.statusCode / 100)}xx`,
        },
        seconds,
      );
    });
    next();
  };
}
