import { ApiError, type ApiClient } from './api-client.js';

const FULL_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PREFIX = /^[0-9a-f-]{1,36}$/i;
/** The API's largest page: a prefix is looked up in as few calls as possible. */
const PAGE = 200;
/** Matches named in an "ambiguous" error; more are counted, not listed. */
const MAX_LISTED = 10;

/**
 * A full session id, from a full one or an unambiguous prefix of one, as `docker inspect`
 * takes them: the prefix is matched against every session the server lists (live and
 * retained). Throws an ApiError that says what matched when none or several do.
 */
export async function resolveSessionId(api: ApiClient, idOrPrefix: string): Promise<string> {
  if (FULL_ID.test(idOrPrefix)) return idOrPrefix.toLowerCase();
  if (!PREFIX.test(idOrPrefix)) {
    throw new ApiError(`"${idOrPrefix}" is neither a session id nor the start of one (hex digits and dashes)`, null);
  }
  const prefix = idOrPrefix.toLowerCase();
  const matches: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await api.listSessions({ limit: PAGE, cursor });
    for (const s of page.items) if (s.id.startsWith(prefix)) matches.push(s.id);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) {
    throw new ApiError(`no session id starts with "${idOrPrefix}" (live sessions and ended ones still retained)`, 404);
  }
  const listed = matches.slice(0, MAX_LISTED).join(', ');
  const more = matches.length > MAX_LISTED ? ` and ${matches.length - MAX_LISTED} more` : '';
  throw new ApiError(`"${idOrPrefix}" is ambiguous: ${matches.length} sessions start with it: ${listed}${more}; give more of the id`, null);
}
