import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { serviceNodeFlags } from '../bench/service-flags.js';

const read = (name: string) => fs.readFileSync(fileURLToPath(new URL(`../../${name}`, import.meta.url)), 'utf8');

interface Service {
  image?: string;
  command?: string | string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: string[] | Record<string, { condition: string }>;
}

const compose = parseYaml(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const prometheus = parseYaml(read('grafana/prometheus/prometheus.yml')) as {
  scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
};
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const tandems = Object.entries(compose.services).filter(([name]) => /^tandem(-\d+)?$/.test(name));

describe('docker-compose.yml (no Docker engine here: the file is checked, not run)', () => {
  it('runs two tandem instances on one Redis', () => {
    assert.equal(compose.services.redis?.image, 'redis:7');
    assert.deepEqual(tandems.map(([name]) => name).sort(), ['tandem', 'tandem-2']);
    for (const [name, s] of tandems) {
      assert.equal(s.environment?.REDIS_URL, 'redis://redis:6379', name);
      assert.equal(s.environment?.INSTANCE_URL, `http://${name}:${s.environment?.PORT}`, `${name} is reached at its own compose hostname`);
    }
  });

  it('gives each instance a DATA_DIR volume of its own, declared, and a host port of its own', () => {
    const dataVolumes = tandems.map(([, s]) => s.volumes!.find((v) => v.endsWith(`:${s.environment!.DATA_DIR}`))!.split(':')[0]!);
    assert.equal(new Set(dataVolumes).size, tandems.length, `data volumes ${dataVolumes.join(', ')}`);
    for (const v of dataVolumes) assert.ok(v in compose.volumes, `volume ${v} is declared`);
    const hostPorts = tandems.map(([, s]) => s.ports![0]!.split(':').slice(0, -1).join(':'));
    assert.equal(new Set(hostPorts).size, tandems.length);
  });

  it('builds once: the second instance waits for the first to be healthy and runs its build', () => {
    const second = compose.services['tandem-2']!;
    assert.deepEqual((second.depends_on as Record<string, { condition: string }>).tandem, { condition: 'service_healthy' });
    assert.doesNotMatch(String(second.command), /npm (ci|run build)/);
  });

  it('runs each instance as npm start does: node itself (so SIGTERM reaches it), with the same flags', () => {
    for (const [name, s] of tandems) {
      const words = ['exec node', ...serviceNodeFlags().map(escapeRegExp), 'dist/src/main\\.js'];
      assert.match(String(s.command), new RegExp(`(^|&& |")${words.join(' ')}"?$`), name);
    }
  });

  it('sets only variables tandem reads or README documents', () => {
    const known = new Set([
      ...[...read('src/config.ts').matchAll(/^ {2}([A-Z][A-Z0-9_]+): /gm)].map((m) => m[1]!),
      ...[...read('README.md').matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!),
    ]);
    for (const [name, s] of tandems) {
      for (const variable of Object.keys(s.environment ?? {})) assert.ok(known.has(variable), `${name}: ${variable}`);
    }
  });

  it('has Prometheus scrape every instance', () => {
    const targets = prometheus.scrape_configs.find((c) => c.job_name === 'tandem')!.static_configs.flatMap((c) => c.targets);
    assert.deepEqual(targets.sort(), tandems.map(([name, s]) => `${name}:${s.environment!.PORT}`).sort());
  });
});
