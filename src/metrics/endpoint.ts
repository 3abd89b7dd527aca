import type { RequestHandler } from 'express';
import type { Registry } from 'prom-client';

/** `GET /metrics`: the registry in Prometheus's text format. */
export function metricsEndpoint(registry: Registry): RequestHandler {
  return (_req, res, next) => {
    registry.metrics().then((text) => {
      res.setHeader('Content-Type', registry.contentType);
      res.end(text);
    }, next);
  };
}
