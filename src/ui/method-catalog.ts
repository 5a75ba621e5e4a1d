/**
 * The methods the experiment builder offers, as data. Each entry says which
 * bit widths and group sizes it takes, which options it has (each a checkbox,
 * a choice or a number) and how one cell of the grid becomes a MethodSpec.
 * Adding a method to the page is adding an entry here: the builder, the
 * settings check, the estimate and the shareable link all read this table.
 */
import type { MethodSpec } from '../core/experiment';
import type { KvCacheSpec } from '../core/quant/kv';

export type GroupChoice = number | 'row';

export type OptionValue = boolean | number | string;

export interface MethodOption {
  key: string;
  label: string;
  hint?: string;
  /** checkbox (boolean), choice (one of `choices`) or number (min…max) */
  kind: 'checkbox' | 'choice' | 'number';
  default: OptionValue;
  choices?: readonly { value: OptionValue; label: string }[];
  min?: number;
  max?: number;
  step?: number;
}

/** One grid cell: a bit width and a group size (both absent for methods without a grid). */
export interface GridCell {
  bits: number;
  groupSize: GroupChoice;
}

export interface MethodEntry {
  /** MethodSpec.id */
  id: string;
  label: string;
  hint: string;
  /** bit widths offered and those ticked by default; empty for methods without a bits axis */
  bits: readonly number[];
  defaultBits: readonly number[];
  groups: readonly GroupChoice[];
  defaultGroups: readonly GroupChoice[];
  options: readonly MethodOption[];
  /** the method reads calibration text before it quantizes (the run shows a calibrate stage) */
  calibrates?: boolean;
  /** the layer inspector can show it (weight-only, one grid per group: src/lab/inspect.ts) */
  inspectable?: boolean;
  /** one cell of the grid with these options → the spec; null when the cell does not apply */
  spec(cell: GridCell, options: Record<string, OptionValue>): MethodSpec | null;
}

const BITS = [8, 4, 3, 2] as const;
const GROUPS: readonly GroupChoice[] = [32, 64, 128, 'row'];

type RtnBits = 2 | 3 | 4 | 8;
const asBits = (b: number): RtnBits => (b === 2 || b === 3 || b === 4 ? b : 8);

/** Options every weight-only method with the shared packed format has. */
const WEIGHT_OPTIONS: readonly MethodOption[] = [
  { key: 'symmetric', label: 'symmetric', hint: 'no zero point', kind: 'checkbox', default: false },
  { key: 'quantizeHead', label: 'quantize the output head', kind: 'checkbox', default: false },
  { key: 'quantizeEmbeddings', label: 'quantize the token embeddings', kind: 'checkbox', default: false },
];

const weightOnly = (o: Record<string, OptionValue>) => ({
  symmetric: o.symmetric === true,
  ...(o.quantizeHead === true ? { quantizeHead: true } : {}),
  ...(o.quantizeEmbeddings === true ? { quantizeEmbeddings: true } : {}),
});
const num = (v: OptionValue | undefined, fallback: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);

export const METHOD_CATALOG: readonly MethodEntry[] = [
  {
    id: 'rtn',
    inspectable: true,
    label: 'RTN',
    hint: 'round to nearest, per group',
    bits: BITS,
    defaultBits: [4],
    groups: GROUPS,
    defaultGroups: [128],
    options: WEIGHT_OPTIONS,
    spec: (cell, o) => ({
      id: 'rtn',
      bits: asBits(cell.bits),
      groupSize: cell.groupSize,
      symmetric: o.symmetric === true,
      ...(o.quantizeHead === true ? { quantizeHead: true } : {}),
      ...(o.quantizeEmbeddings === true ? { quantizeEmbeddings: true } : {}),
    }),
  },
  {
    id: 'awq',
    inspectable: true,
    label: 'AWQ',
    hint: 'activation-aware channel scales, searched on calibration text',
    bits: BITS,
    defaultBits: [4],
    groups: GROUPS,
    defaultGroups: [128],
    options: [...WEIGHT_OPTIONS, { key: 'clip', label: 'search clipping ratios', kind: 'checkbox', default: true }],
    calibrates: true,
    spec: (cell, o) => ({ id: 'awq', bits: asBits(cell.bits), groupSize: cell.groupSize, ...weightOnly(o), ...(o.clip === false ? { clip: false } : {}) }),
  },
  {
    id: 'gptq',
    inspectable: true,
    label: 'GPTQ',
    hint: 'column by column, errors fed back through the Hessian',
    bits: BITS,
    defaultBits: [4],
    groups: GROUPS,
    defaultGroups: [128],
    options: [...WEIGHT_OPTIONS, { key: 'actOrder', label: 'act-order', hint: 'columns by decreasing Hessian diagonal', kind: 'checkbox', default: false }],
    calibrates: true,
    spec: (cell, o) => ({ id: 'gptq', bits: asBits(cell.bits), groupSize: cell.groupSize, ...weightOnly(o), ...(o.actOrder === true ? { actOrder: true } : {}) }),
  },
  {
    id: 'hqq',
    inspectable: true,
    label: 'HQQ',
    hint: 'half-quadratic zero points, no calibration',
    bits: BITS,
    defaultBits: [4],
    groups: GROUPS,
    defaultGroups: [64],
    options: WEIGHT_OPTIONS,
    spec: (cell, o) => ({ id: 'hqq', bits: asBits(cell.bits), groupSize: cell.groupSize, ...weightOnly(o) }),
  },
  {
    id: 'mixllm',
    label: 'MixLLM',
    hint: 'mixed precision: the most salient output features in more bits',
    bits: [4, 3, 2],
    defaultBits: [3],
    groups: GROUPS,
    defaultGroups: [128],
    options: [
      { key: 'highBits', label: 'high bits', kind: 'choice', default: 8, choices: [{ value: 8, label: '8' }, { value: 4, label: '4' }] },
      { key: 'highFraction', label: 'fraction in high bits', kind: 'number', default: 0.1, min: 0, max: 1, step: 0.05 },
      { key: 'base', label: 'quantizer', kind: 'choice', default: 'rtn', choices: [{ value: 'rtn', label: 'RTN' }, { value: 'gptq', label: 'GPTQ' }] },
      { key: 'symmetric', label: 'symmetric', hint: 'no zero point', kind: 'checkbox', default: false },
    ],
    calibrates: true,
    spec: (cell, o) => {
      const low = cell.bits === 2 || cell.bits === 3 ? cell.bits : 4;
      const high = o.highBits === 4 ? 4 : 8;
      if (high <= low) return null; // "high" bits must be more than the low ones
      return {
        id: 'mixllm',
        lowBits: low,
        highBits: high,
        highFraction: Math.min(1, Math.max(0, num(o.highFraction, 0.1))),
        base: o.base === 'gptq' ? 'gptq' : 'rtn',
        groupSize: cell.groupSize,
        ...(o.symmetric === true ? { symmetric: true } : {}),
      };
    },
  },
  {
    id: 'smoothquant',
    label: 'SmoothQuant W8A8',
    hint: 'activations and weights in int8, outliers smoothed into the weights',
    bits: [],
    defaultBits: [],
    groups: [],
    defaultGroups: [],
    options: [{ key: 'alpha', label: 'migration strength α', kind: 'number', default: 0.5, min: 0, max: 1, step: 0.05 }],
    calibrates: true,
    spec: (_cell, o) => ({ id: 'smoothquant', alpha: Math.min(1, Math.max(0, num(o.alpha, 0.5))) }),
  },
  {
    id: 'atom',
    label: 'Atom W4A4',
    hint: 'weights and activations in 4 bits, outlier channels in 8',
    bits: [],
    defaultBits: [],
    groups: [32, 64, 128],
    defaultGroups: [128],
    options: [{ key: 'outliers', label: 'outlier channels (int8)', kind: 'number', default: 32, min: 0, max: 4096, step: 8 }],
    calibrates: true,
    spec: (cell, o) => ({ id: 'atom', groupSize: cell.groupSize === 'row' ? 128 : cell.groupSize, outliers: Math.max(0, Math.round(num(o.outliers, 32))) }),
  },
];

/** KV-cache settings the builder offers (with any method): f32, or int8 / int4 in groups of 32 (src/core/quant/kv.ts). */
export const KV_CHOICES: readonly { id: string; label: string; kv: KvCacheSpec | null }[] = [
  { id: 'f32', label: 'f32', kv: null },
  { id: 'int8', label: 'int8 g32', kv: { bits: 8, groupSize: 32 } },
  { id: 'int4', label: 'int4 g32', kv: { bits: 4, groupSize: 32 } },
];

export function catalogEntry(id: string): MethodEntry | undefined {
  return METHOD_CATALOG.find((m) => m.id === id);
}

/** The default option values of an entry. */
export function defaultOptions(entry: MethodEntry): Record<string, OptionValue> {
  return Object.fromEntries(entry.options.map((o) => [o.key, o.default]));
}

/** A saved or shared option value if the entry's option accepts it, else its default. */
export function checkOption(option: MethodOption, value: unknown): OptionValue {
  switch (option.kind) {
    case 'checkbox':
      return typeof value === 'boolean' ? value : option.default;
    case 'choice':
      return option.choices?.some((c) => c.value === value) ? (value as OptionValue) : option.default;
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) && (option.min === undefined || value >= option.min) && (option.max === undefined || value <= option.max)
        ? value
        : option.default;
  }
}
