const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 300;
const HEIGHT = 60;

export interface Series {
  label: string;
  /** CSS class of the line (its colour lives in style.css). */
  className: string;
  values: (number | null)[];
}

/**
 * A small line chart (inline SVG, no library) over the last `spanSeconds`: one point per
 * sample, the newest at the right edge; the scale starts at 0 and ends at the largest value.
 * The chart's accessible name states the latest values, so it reads without seeing it.
 */
export class Chart {
  readonly element: HTMLElement;
  readonly #svg: SVGSVGElement;
  readonly #caption: HTMLElement;
  readonly #max: HTMLElement;
  readonly #title: string;
  readonly #unit: string;

  constructor(title: string, unit: string) {
    this.#title = title;
    this.#unit = unit;
    this.element = document.createElement('figure');
    this.element.className = 'chart';
    this.#svg = document.createElementNS(SVG, 'svg');
    this.#svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
    this.#svg.setAttribute('preserveAspectRatio', 'none');
    this.#svg.setAttribute('role', 'img');
    this.#max = document.createElement('span');
    this.#max.className = 'chart-max';
    this.#caption = document.createElement('figcaption');
    this.element.append(this.#caption, this.#svg, this.#max);
  }

  draw(series: Series[], spanPoints: number): void {
    const all = series.flatMap((s) => s.values).filter((v): v is number => v !== null);
    const max = Math.max(1e-9, ...all);
    this.#svg.replaceChildren();
    for (const s of series) {
      const points: string[] = [];
      const offset = spanPoints - s.values.length;
      s.values.forEach((v, i) => {
        if (v === null) return;
        const x = ((offset + i) / Math.max(1, spanPoints - 1)) * WIDTH;
        const y = HEIGHT - (v / max) * (HEIGHT - 2) - 1;
        points.push(`${x.toFixed(1)},${y.toFixed(1)}`);
      });
      const line = document.createElementNS(SVG, 'polyline');
      line.setAttribute('points', points.join(' '));
      line.setAttribute('class', s.className);
      this.#svg.append(line);
    }
    const latest = series.map((s) => `${s.label} ${format(s.values[s.values.length - 1] ?? null)}${this.#unit}`).join(', ');
    this.#caption.textContent = `${this.#title}: ${latest}`;
    this.#max.textContent = all.length ? `0 – ${format(max)}${this.#unit} over the last ${spanPoints < 120 ? `${spanPoints} s` : `${Math.round(spanPoints / 60)} min`}` : 'no data yet';
    this.#svg.setAttribute('aria-label', `${this.#title} over the last minutes; now ${latest}`);
  }
}

function format(v: number | null): string {
  if (v === null) return '–';
  if (Number.isInteger(v)) return String(v);
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}
