import type { NextFunction, Request, RequestHandler, Response } from 'express';

/** Express 4 ignores a rejected promise: hand it to the error handler (src/routes/problem.ts). */
export function asyncRoute(fn: (req: Request, res: Response) => Promise<void>): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    fn(req, res).catch(next);
  };
}
