/**
 * @huggingface/jinja 0.5.11's interpreter, corrected where it renders real chat templates differently from Python's
 * jinja2 (each case found by rendering llama.cpp's template collection with both; fixtures/chat/render.py):
 *
 * 1. `x | string` of a dict, list, bool or None gives Python's `str()` (`{'a': 1}`, `True`, `None`), not JSON
 *    (Apriel 1.5 / 1.6 tool lists).
 * 2. `undefined | trim` is `''`, as jinja2's `soft_str` makes it (Hermes 2 Pro / 3 tool schemas without a
 *    description).
 * 3. `select`, `reject`, `selectattr`, `rejectattr` and `map` of `none` give an empty sequence, as jinja2 skips a
 *    falsy sequence (functionary v3.1 with `tools=None`).
 * 4. Tuples unpack in `for a, b in [(...), ...]` (functionary v3.2).
 * 5. `'...{}...'.format(x)`: Python's `str.format` with `{}`, `{0}` and `{name}` fields (Tencent Hy3).
 * 6. Dict literals with integer keys, and `dictsort` over them by number (ByteDance Seed-OSS).
 * 7. `'...' | safe` is markupsafe's `Markup`: adding a plain string to it HTML-escapes that string, as jinja2 does
 *    even without autoescape (functionary v3.1 renders its tool JSON with `&#34;` in transformers too).
 * 8. `{{ x }}` prints Python's `str(x)`: `True`, `False`, `None`, `['a']`, `{'k': 1}` (the library prints `true`,
 *    nothing, JSON).
 */
import { Environment, Interpreter } from '@huggingface/jinja';

/** A runtime value of the interpreter (its classes are not exported; we reach them through values it makes). */
interface RV {
  type: string;
  value: unknown;
  builtins: Map<string, RV>;
}
type RVClass = new (value: unknown) => RV;

const probe = new Environment();
const cls = (v: unknown) => (probe.set(`p${Math.random()}`, v) as unknown as RV).constructor as RVClass;
const StringValue = cls('');
const IntegerValue = cls(1);
const ArrayValue = cls([]);
const ObjectValue = cls({});
const FunctionValue = cls(() => 0);
const NullValue = cls(null);
const UndefinedValue = cls(undefined);
const BooleanValue = cls(true);
const FloatValue = cls(0.5);

/** markupsafe's Markup: a string already safe; what is added to it gets escaped. */
class MarkupValue extends (StringValue as unknown as new (v: string) => RV) {}

const is = (v: RV, c: RVClass) => v instanceof c;

/** markupsafe's `escape`. */
function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' })[c] as string,
  );
}

/** Python's `repr` of a string. */
function reprString(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}

/** Python's `str()` (and `repr()` inside containers) of a runtime value. */
function pyStr(v: RV, nested = false): string {
  if (is(v, StringValue)) return nested ? reprString(v.value as string) : (v.value as string);
  if (is(v, BooleanValue)) return v.value ? 'True' : 'False';
  if (is(v, NullValue) || is(v, UndefinedValue)) return nested ? 'None' : is(v, NullValue) ? 'None' : '';
  if (is(v, FloatValue)) {
    const n = v.value as number;
    return Number.isInteger(n) ? `${n}.0` : String(n);
  }
  if (is(v, IntegerValue)) return String(v.value);
  if (is(v, ArrayValue)) return `[${(v.value as RV[]).map((x) => pyStr(x, true)).join(', ')}]`;
  if (is(v, ObjectValue)) {
    const entries = [...(v.value as Map<string | number, RV>)].map(
      ([k, x]) => `${typeof k === 'number' ? k : reprString(k)}: ${pyStr(x, true)}`,
    );
    return `{${entries.join(', ')}}`;
  }
  return String(v.value);
}

/** Python's `str.format` for `{}`, `{0}`, `{name}` fields and `{{`/`}}`. */
function pyFormat(template: string, args: RV[]): string {
  const positional = args.filter((a) => a.type !== 'KeywordArgumentsValue');
  const kw = args.find((a) => a.type === 'KeywordArgumentsValue')?.value as Map<string, RV> | undefined;
  let auto = 0;
  return template.replace(/\{\{|\}\}|\{([^{}:!]*)(?:[:!][^{}]*)?\}/g, (m, field: string) => {
    if (m === '{{') return '{';
    if (m === '}}') return '}';
    const v = field === '' ? positional[auto++] : /^\d+$/.test(field) ? positional[Number(field)] : kw?.get(field);
    if (v === undefined) throw new Error(`str.format: no value for field '${field}'`);
    return pyStr(v);
  });
}

const SEQUENCE_FILTERS = new Set(['select', 'reject', 'selectattr', 'rejectattr', 'map']);

interface FilterNode {
  type: string;
  value?: string;
  operand?: FilterNode;
}

/** The interpreter with the corrections listed above. */
export class PythonJinjaInterpreter extends Interpreter {
  override evaluate(statement: unknown, environment: Environment): never {
    const node = statement as { type: string; value: unknown };
    if (node?.type === EVALUATED) return node.value as never;
    if (node?.type === 'TupleLiteral') {
      const items = (node.value as unknown[]).map((x) => this.evaluate(x, environment) as unknown as RV);
      return new ArrayValue(items) as never;
    }
    if (node?.type === 'ObjectLiteral') {
      const pairs = node.value as Map<unknown, unknown>;
      const keys = [...pairs.keys()].map((k) => this.evaluate(k, environment) as unknown as RV);
      if (keys.some((k) => is(k, IntegerValue))) {
        const map = new Map<string | number, RV>();
        let i = 0;
        for (const value of pairs.values()) {
          const k = keys[i++];
          map.set(
            is(k, IntegerValue) ? (k.value as number) : String(k.value),
            this.evaluate(value, environment) as never,
          );
        }
        return new ObjectValue(map) as never;
      }
    }
    if (node?.type === 'BinaryExpression') {
      const b = node as unknown as { operator: { value: string }; left: unknown; right: unknown };
      if (b.operator.value === '+') {
        const left = this.evaluate(b.left, environment) as unknown as RV;
        const right = this.evaluate(b.right, environment) as unknown as RV;
        if (
          (left instanceof MarkupValue || right instanceof MarkupValue) &&
          is(left, StringValue) &&
          is(right, StringValue)
        ) {
          const side = (v: RV) => (v instanceof MarkupValue ? (v.value as string) : escapeHtml(v.value as string));
          return new MarkupValue(side(left) + side(right)) as never;
        }
        // Evaluated already: hand the library literal copies so nothing is evaluated twice.
        return super.evaluate({ ...b, left: literalOf(left), right: literalOf(right) } as never, environment) as never;
      }
    }
    if (node?.type === 'FilterExpression') {
      const fe = node as unknown as { operand: unknown; filter: FilterNode };
      const operand = this.evaluate(fe.operand, environment) as unknown as RV;
      const fixed = this.#filter(operand, fe.filter);
      if (fixed !== undefined) return fixed as never;
      return super.evaluate({ ...fe, operand: literalOf(operand) } as never, environment) as never;
    }
    if (node?.type === 'MemberExpression') {
      const m = node as unknown as { object: unknown; property: { type: string; value: unknown }; computed: boolean };
      if (!m.computed && m.property.type === 'Identifier' && m.property.value === 'format') {
        const object = this.evaluate(m.object, environment) as unknown as RV;
        if (is(object, StringValue)) {
          return new FunctionValue((args: RV[]) => new StringValue(pyFormat(object.value as string, args))) as never;
        }
        return super.evaluate({ ...m, object: literalOf(object) } as never, environment) as never;
      }
    }
    return super.evaluate(statement as never, environment) as never;
  }

  /** The filter corrections; undefined when the library's own filter is right. */
  #filter(v: RV, f: FilterNode): RV | undefined {
    const name =
      f.type === 'Identifier'
        ? f.value
        : f.type === 'CallExpression'
          ? (f as unknown as { callee: FilterNode }).callee.value
          : undefined;
    if (name === 'safe' && is(v, StringValue)) return new MarkupValue(v.value as string);
    if (name === 'string' && !is(v, StringValue)) return new StringValue(pyStr(v));
    if (name === 'trim' && is(v, UndefinedValue)) return new StringValue('');
    if (name !== undefined && SEQUENCE_FILTERS.has(name) && (is(v, NullValue) || is(v, UndefinedValue))) {
      return new ArrayValue([]);
    }
    if (name === 'dictsort' && is(v, ObjectValue)) {
      const map = v.value as Map<string | number, RV>;
      if ([...map.keys()].some((k) => typeof k === 'number')) {
        const key = (k: string | number) => (typeof k === 'number' ? new IntegerValue(k) : new StringValue(k));
        const items = [...map]
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([k, x]) => new ArrayValue([key(k), x]));
        return new ArrayValue(items);
      }
    }
    return undefined;
  }
}

/** Statements whose value is not printed (control flow); everything else in a block is an `{{ expression }}`. */
const CONTROL = new Set([
  'Program',
  'Set',
  'If',
  'For',
  'Macro',
  'CallStatement',
  'FilterStatement',
  'Break',
  'Continue',
  'Comment',
]);

// `evaluateBlock` is private in the library's typings, so it is replaced on our subclass's prototype only.
Object.defineProperty(PythonJinjaInterpreter.prototype, 'evaluateBlock', {
  value(this: PythonJinjaInterpreter, statements: unknown[], environment: Environment): RV {
    let result = '';
    for (const statement of statements) {
      const v = this.evaluate(statement, environment) as unknown as RV;
      const printed = CONTROL.has((statement as { type: string }).type) || is(v, StringValue);
      if (printed) {
        if (v.type !== 'NullValue' && v.type !== 'UndefinedValue') result += String(v.value);
      } else result += pyStr(v);
    }
    return new StringValue(result);
  },
});

/** A node that evaluates to an already-computed value (handled first by our `evaluate`). */
const EVALUATED = '__evaluated';
function literalOf(v: RV): unknown {
  return { type: EVALUATED, value: v };
}
