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
 * What the `Authorization` header's token may do: `admin`, `read`, or null for a missing or
 * unknown token. Without ADMIN_TOKEN the API is open (loopback only) and everyone is `admin`.
 * Tokens are compared as SHA-256 digests with timingSafeEqual, so neither the content nor the
 * length of a token leaks through timing.
 */
export function tokenRole(tokens: Tokens): (authorization: string | undefined) => Role | null {
  const admin = tokens.admin === undefined ? undefined : digest(tokens.admin);
  const read = tokens.read === undefined ? undefined : digest(tokens.read);
  return (authorization) => {
    if (admin === undefined) return 'admin';
    const presented = bearerToken(authorization);
    if (!presented) return null;
    const given = digest(presented);
    // Compare against both, always, so the time taken does not say which one matched.
    const isAdmin = timingSafeEqual(given, admin);
    const isRead = read !== undefined && timingSafeEqual(given, read);
    return isAdmin ? 'admin' : isRead ? 'read' : null;
  };
}

/**
 * The security handler express-openapi-validator calls for `bearerAuth`, with the roles the
 * operation requires. Throws UNAUTHORIZED (401) for a missing or unknown token, FORBIDDEN (403)
 * for a read-only token on an admin operation.
 */
export function bearerAuth(tokens: Tokens): (req: Request, roles: string[]) => boolean {
  const roleOf = tokenRole(tokens);
  return (req, roles) => {
    if (!bearerToken(req.headers.authorization)) {
      throw tandemError('UNAUTHORIZED', 'send Authorization: Bearer <token> (ADMIN_TOKEN or ADMIN_READ_TOKEN)');
    }
    const role = roleOf(req.headers.authorization);
    if (role === null) throw tandemError('UNAUTHORIZED', 'the bearer token is not valid');
    if (roles.includes('admin') && role !== 'admin') {
      throw tandemError('FORBIDDEN', 'this token is read-only (ADMIN_READ_TOKEN); this operation needs ADMIN_TOKEN');
    }
    return true;
  };
}
