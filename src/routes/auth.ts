import { timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { bearerToken, tokenDigest as digest } from '../auth/token.js';
import { tandemError } from '../errors.js';

/** Roles openapi.yaml names in each operation's `security` (`bearerAuth: [read]` or `[admin]`). */
export type Role = 'admin' | 'read';

export interface Tokens {
  readonly admin: string | undefined;
  readonly read: string | undefined;
}

/**
 * The security handler express-openapi-validator calls for `bearerAuth`, with the roles the
 * operation requires. Tokens are compared as SHA-256 digests with timingSafeEqual, so neither
 * the content nor the length of a token leaks through timing.
 * Throws UNAUTHORIZED (401) for a missing or unknown token, FORBIDDEN (403) for a read-only
 * token on an admin operation.
 */
export function bearerAuth(tokens: Tokens): (req: Request, roles: string[]) => boolean {
  const admin = tokens.admin === undefined ? undefined : digest(tokens.admin);
  const read = tokens.read === undefined ? undefined : digest(tokens.read);
  return (req, roles) => {
    const presented = bearerToken(req.headers.authorization);
    if (!presented) throw tandemError('UNAUTHORIZED', 'send Authorization: Bearer <token> (ADMIN_TOKEN or ADMIN_READ_TOKEN)');
    const given = digest(presented);
    // Compare against both, always, so the time taken does not say which one matched.
    const isAdmin = admin !== undefined && timingSafeEqual(given, admin);
    const isRead = read !== undefined && timingSafeEqual(given, read);
    const role: Role | null = isAdmin ? 'admin' : isRead ? 'read' : null;
    if (role === null) throw tandemError('UNAUTHORIZED', 'the bearer token is not valid');
    if (roles.includes('admin') && role !== 'admin') {
      throw tandemError('FORBIDDEN', 'this token is read-only (ADMIN_READ_TOKEN); this operation needs ADMIN_TOKEN');
    }
    return true;
  };
}
