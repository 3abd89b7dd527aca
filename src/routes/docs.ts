import { Router } from 'express';
import swaggerUi from 'swagger-ui-express';
import type { OpenApiSpec } from './spec.js';

/**
 * GET /openapi.json, /openapi.yaml, /asyncapi.json, /asyncapi.yaml and /docs (Swagger UI, whose
 * description links the AsyncAPI documents of the WebSocket protocol). Swagger UI's files come
 * from the installed swagger-ui-dist, never a CDN; its online validator badge is off (no outside calls).
 */
export function docsRoutes(spec: OpenApiSpec, asyncSpec: OpenApiSpec): Router {
  const router = Router();
  for (const [name, doc] of [['openapi', spec], ['asyncapi', asyncSpec]] as const) {
    router.get(`/${name}.json`, (_req, res) => {
      res.json(doc.document);
    });
    router.get(`/${name}.yaml`, (_req, res) => {
      res.type('application/yaml').send(doc.yaml);
    });
  }
  const document = structuredClone(spec.document);
  const options = {
    customSiteTitle: 'tandem control plane',
    swaggerOptions: { validatorUrl: null, displayOperationId: true, tryItOutEnabled: false },
  };
  // serveFiles (not serve): each app gets its own init script instead of swagger-ui-express's module-level one.
  router.use('/docs', swaggerUi.serveFiles(document, options), swaggerUi.setup(document, options));
  return router;
}
