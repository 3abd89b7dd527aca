import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/prometheus.js';

const DASHBOARDS_DIR = path.join(REPO_ROOT, 'grafana/dashboards');

interface Dashboard {
  uid?: string;
  title?: string;
  templating: { list: Array<{ name: string; type: string }> };
  panels: Array<{
    type: string;
    title?: string;
    description?: string;
    datasource?: { uid?: string };
    fieldConfig?: { defaults?: { unit?: string } };
    targets?: Array<{ expr?: string; datasource?: { uid?: string } }>;
  }>;
}

const dashboards = fs
  .readdirSync(DASHBOARDS_DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ file: f, board: JSON.parse(fs.readFileSync(path.join(DASHBOARDS_DIR, f), 'utf8')) as Dashboard }));

describe('Grafana dashboards', () => {
  it('ship overview, cluster, threads, WebSocket/HTTP and process dashboards with fixed, unique uids', () => {
    const uids = dashboards.map((d) => d.board.uid);
    assert.deepEqual([...uids].sort(), ['tandem-cluster', 'tandem-overview', 'tandem-process', 'tandem-threads', 'tandem-ws-http']);
  });

  it('offer datasource, job and instance variables', () => {
    for (const { file, board } of dashboards) {
      const vars = Object.fromEntries(board.templating.list.map((v) => [v.name, v.type]));
      assert.deepEqual(vars, { datasource: 'datasource', job: 'query', instance: 'query' }, file);
    }
  });

  it('give every panel a title, a description, a unit and queries on the chosen datasource, job and instance', () => {
    for (const { file, board } of dashboards) {
      assert.ok(board.panels.length > 0, file);
      for (const p of board.panels) {
        const where = `${file} / ${p.title ?? p.type}`;
        assert.ok(p.title, `${where}: title`);
        assert.ok(p.description, `${where}: description`);
        assert.ok(p.fieldConfig?.defaults?.unit, `${where}: unit`);
        assert.equal(p.datasource?.uid, '${datasource}', `${where}: datasource variable`);
        assert.ok(p.targets && p.targets.length > 0, `${where}: queries`);
        for (const t of p.targets) {
          const expr = t.expr ?? '';
          assert.equal(t.datasource?.uid, '${datasource}', `${where}: target datasource`);
          for (const m of expr.matchAll(/\b(tandem_[a-z0-9_]+)(.?)/g)) assert.equal(m[2], '{', `${where}: ${m[1]} has a selector`);
          for (const m of expr.matchAll(/\btandem_[a-z0-9_]+\{([^}]*)\}/g)) {
            assert.match(m[1]!, /job="\$job", instance=~"\$instance"/, `${where}: selector of ${m[0]}`);
          }
          for (const m of expr.matchAll(/\b(rate|irate|increase)\([^)]*\[([^\]]+)\]\)/g)) {
            assert.equal(m[2], '$__rate_interval', `${where}: ${m[1]}() window`);
          }
        }
      }
    }
  });
});
