/** Reading Prometheus's text exposition format, as a scrape of GET /metrics returns it. */

/** The value of one series (a name, with its labels as written) in `text`; undefined when it is absent. */
export function seriesValue(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
