/** Reading Prometheus's text exposition format, as a scrape of GET /metrics returns it. */
import assert from 'node:assert/strict';

/** The value of one series (a name, with its labels as written) in `text`; undefined when it is absent. */
export function seriesValue(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** The value of one series in a scrape of `metricsUrl` (GET /metrics); fails the test when the scrape has none. */
export async function scrapedValue(metricsUrl: string, series: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const value = seriesValue(text, series);
  assert.ok(value !== undefined, `${series} is exported`);
  return value;
}
