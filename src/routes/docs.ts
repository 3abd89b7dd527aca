import { Router } from 'express';
import swaggerUi from 'swagger-ui-express';
import type { OpenApiSpec } from './spec.js';

/**
 * GET /openapi.json, /openapi.yaml and /docs (Swagger UI). Swagger UI's files come from the
 * installed swagger-ui-dist, never a CDN; its online validator badge is off (no outside calls).
 */
export function docsRoutes(spec: OpenApiSpec): Router {
  const router = Router();
  router.get('/openapi.json', (_req, res) => {
    res.json(spec.document);
  });
  router.get('/openapi.yaml', (_req, res) => {
    res.type('application/yaml').send(spec.yaml);
  });
  const document = structuredClone(spec.document);
  const options = {
    customSiteTitle: 'tandem control plane',
    swaggerOptions: { validatorUrl: null, displayOperationId: true, tryItOutEnabled: false },
  };
  // serveFiles (not serve): each app gets its own init script instead of swagger-ui-express's module-level one.
  router.use('/docs', swaggerUi.serveFiles(document, options), swaggerUi.setup(document, options));
  return router;
}
