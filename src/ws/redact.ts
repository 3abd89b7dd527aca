import fs from 'node:fs';

/**
 * Error messages sent to a WebSocket client never carry a server path: a pipeline's or the
 * spool's fs error (`ENOENT: no such file or directory, open '/srv/tandem/data/spool/<id>/…'`)
 * would tell any client where the service keeps its data. The full message stays in the log
 * and in GET /api/sessions/{id} (`error`) for operators.
 *
 * Two rules, in order: the DATA_DIR prefix (as configured and as resolved through symlinks)
 * becomes `DATA_DIR`; any other absolute path quoted the way Node's fs errors quote them
 * (`'/a/b/c'` or `"/a/b/c"`) becomes `…/c`, its last part only.
 */
export function serverPathRedactor(dataDir: string): (message: string) => string {
  let prefixes: RegExp[] | null = null;
  return (message) => {
    // Built on first use: DATA_DIR (and so its real path) exists by the time a session fails.
    prefixes ??= rootPatterns(dataDir);
    let out = message;
    for (const re of prefixes) out = out.replace(re, 'DATA_DIR');
    return out.replace(QUOTED_ABSOLUTE_PATH, (_m, quote: string, p: string) => `${quote}…/${p.slice(p.lastIndexOf('/') + 1)}${quote}`);
  };
}

function rootPatterns(dataDir: string): RegExp[] {
  const roots = new Set([dataDir]);
  try {
    roots.add(fs.realpathSync(dataDir));
  } catch {
    // Not there: the configured path is the only one messages can name.
  }
  // Longest first, so a root that extends another is replaced whole.
  return [...roots]
    .map((r) => r.replace(/\/+$/, ''))
    .filter((r) => r.length > 1)
    .sort((a, b) => b.length - a.length)
    .map((r) => new RegExp(`${escapeRegExp(r)}(?=$|[/'"\\s,:;)])`, 'g'));
}

const QUOTED_ABSOLUTE_PATH = /(['"])(\/[^'"\n]*)\1/g;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
