import { h } from './dom.js';

/** The parts of JSON Schema a pipeline's options use that the form understands. */
interface PropertySchema {
  type?: string | string[];
  enum?: unknown[];
  default?: unknown;
  description?: string;
  title?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
}

interface ObjectSchema {
  properties?: Record<string, PropertySchema>;
  required?: string[];
}

type Reader = () => unknown;

/**
 * Renders one labelled control per option of a pipeline's JSON Schema (from GET /api/pipelines)
 * into `container`, defaults filled in, and returns a function that reads the values back: an
 * empty field is left out (the server fills in its default), a bad one throws naming the option.
 * The server validates START's options against the same schema; this is only a convenience.
 * Enums become selects, booleans checkboxes, numbers number fields, strings text fields, and
 * anything else (objects, arrays) a JSON text area.
 */
export function renderSchemaForm(container: HTMLElement, schema: unknown, idPrefix: string): () => Record<string, unknown> {
  const { properties = {}, required = [] } = (schema ?? {}) as ObjectSchema;
  const readers = new Map<string, Reader>();
  const rows: HTMLElement[] = [];
  for (const [name, prop] of Object.entries(properties)) {
    const id = `${idPrefix}-${name}`;
    const hintId = `${id}-hint`;
    const { control, read } = controlFor(name, prop, id, required.includes(name));
    if (prop.description) control.setAttribute('aria-describedby', hintId);
    const label = h('label', { for: id }, prop.title ?? name);
    const row = h('div', { class: 'field' }, label, control);
    if (prop.description) row.append(h('small', { id: hintId }, prop.description));
    rows.push(row);
    readers.set(name, read);
  }
  if (rows.length === 0) rows.push(h('p', { class: 'hint' }, 'This pipeline takes no options.'));
  container.replaceChildren(...rows);
  return () => {
    const values: Record<string, unknown> = {};
    for (const [name, read] of readers) {
      const v = read();
      if (v !== undefined) values[name] = v;
    }
    return values;
  };
}

function controlFor(name: string, prop: PropertySchema, id: string, required: boolean): { control: HTMLElement; read: Reader } {
  const type = Array.isArray(prop.type) ? prop.type.find((t) => t !== 'null') : prop.type;
  if (prop.enum) {
    const select = h('select', { id, name });
    if (!required) select.append(h('option', { value: '' }, '(default)'));
    prop.enum.forEach((v, i) => select.append(h('option', { value: String(i), selected: v === prop.default }, String(v))));
    return { control: select, read: () => (select.value === '' ? undefined : prop.enum![Number(select.value)]) };
  }
  if (type === 'boolean') {
    const box = h('input', { id, name, type: 'checkbox', checked: prop.default === true });
    return { control: box, read: () => box.checked };
  }
  if (type === 'integer' || type === 'number') {
    const input = h('input', {
      id,
      name,
      type: 'number',
      step: type === 'integer' ? '1' : 'any',
      min: prop.minimum === undefined ? undefined : String(prop.minimum),
      max: prop.maximum === undefined ? undefined : String(prop.maximum),
      value: typeof prop.default === 'number' ? String(prop.default) : undefined,
      required,
    });
    return {
      control: input,
      read: () => {
        if (input.value.trim() === '') return undefined;
        const n = Number(input.value);
        if (!Number.isFinite(n)) throw new Error(`option "${name}" must be a number`);
        return n;
      },
    };
  }
  if (type === 'string') {
    const input = h('input', {
      id,
      name,
      type: 'text',
      value: typeof prop.default === 'string' ? prop.default : undefined,
      maxlength: prop.maxLength === undefined ? undefined : String(prop.maxLength),
      required,
    });
    return { control: input, read: () => (input.value === '' ? undefined : input.value) };
  }
  const area = h('textarea', { id, name, rows: '3', required }, prop.default === undefined ? '' : JSON.stringify(prop.default));
  return {
    control: area,
    read: () => {
      if (area.value.trim() === '') return undefined;
      try {
        return JSON.parse(area.value) as unknown;
      } catch {
        throw new Error(`option "${name}" must be JSON`);
      }
    },
  };
}
