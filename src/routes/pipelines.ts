import { Router } from 'express';
import type { components } from '../generated/openapi.js';
import type { PipelineCatalog } from '../pipelines/catalog.js';

type Schemas = components['schemas'];

/** GET /api/pipelines: every pipeline START can name, and the modules that failed to load. */
export function pipelineRoutes({ catalog }: { catalog: PipelineCatalog }): Router {
  const router = Router();
  router.get('/api/pipelines', (_req, res) => {
    const body: Schemas['PipelineList'] = {
      items: catalog.list().map((p) => ({
        name: p.name,
        description: p.description,
        builtin: p.builtin,
        default: p.name === catalog.defaultName,
        producer: { shape: p.producerShape },
        consumer: { shape: p.consumerShape },
        options: p.optionsSchema,
        urls: [...p.urls],
        available: p.unavailable === null,
        ...(p.unavailable === null ? {} : { unavailableReason: p.unavailable }),
      })),
      loadErrors: catalog.loadErrors.map((e) => ({ module: e.module, error: e.error })),
      ignored: catalog.ignoredFiles.map((f) => ({ file: f.file, reason: f.reason })),
    };
    res.json(body);
  });
  return router;
}
