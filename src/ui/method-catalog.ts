/**
 * The methods the experiment builder offers, as data. Each entry says which
 * bit widths and group sizes it takes, which options it has (each a checkbox,
 * a choice or a number) and how one cell of the grid becomes a MethodSpec.
 * Adding a method to the page is adding an entry here: the builder, the
 * settings check, the estimate and the shareable link all read this table.
 */
import type { MethodSpec } from '../core/experiment';

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

export const METHOD_CATALOG: readonly MethodEntry[] = [
  {
    id: 'rtn',
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
