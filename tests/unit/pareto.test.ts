import { describe, expect, it } from 'vitest';
import { dominates, frontierBySeries, groupBySeries, paretoFrontier, type ParetoPoint } from '../../src/core/pareto';

const p = (id: string, x: number, y: number): ParetoPoint => ({ id, x, y });
const ids = (ps: ParetoPoint[]): string[] => ps.map((q) => q.id);

describe('dominates', () => {
  it('needs no worse on both and strictly better on one', () => {
    expect(dominates(p('a', 1, 1), p('b', 2, 2))).toBe(true);
    expect(dominates(p('a', 1, 2), p('b', 2, 2))).toBe(true);
    expect(dominates(p('a', 1, 1), p('b', 1, 1))).toBe(false);
    expect(dominates(p('a', 1, 3), p('b', 2, 2))).toBe(false);
  });
});

describe('paretoFrontier', () => {
  it('keeps the non-dominated points, sorted by cost', () => {
    // f32 at 32 bpw is the most accurate; W8 nearly as good; W4 cheaper; W3 worse but cheapest;
    // "bad" costs more than W4 and is less accurate.
    const points = [p('f32', 32, 10), p('w3', 3.3, 14), p('bad', 5, 13), p('w8', 8.3, 10.05), p('w4', 4.3, 11)];
    const { frontier, finite, excluded } = paretoFrontier(points);
    expect(ids(frontier)).toEqual(['w3', 'w4', 'w8', 'f32']);
    expect(ids(finite)).toEqual(['w3', 'w4', 'bad', 'w8', 'f32']);
    expect(excluded).toEqual([]);
  });

  it('gives an empty frontier for no points and the point itself for one', () => {
    expect(paretoFrontier([]).frontier).toEqual([]);
    expect(ids(paretoFrontier([p('a', 1, 1)]).frontier)).toEqual(['a']);
  });

  it('keeps identical points together (neither dominates the other)', () => {
    const { frontier } = paretoFrontier([p('b', 2, 2), p('a', 2, 2), p('c', 3, 1)]);
    expect(ids(frontier)).toEqual(['a', 'b', 'c']);
  });

  it('drops a point with the same cost and a higher error, or the same error at a higher cost', () => {
    expect(ids(paretoFrontier([p('a', 2, 3), p('b', 2, 2)]).frontier)).toEqual(['b']);
    expect(ids(paretoFrontier([p('a', 3, 2), p('b', 2, 2)]).frontier)).toEqual(['b']);
  });

  it('excludes NaN and infinite points and says why', () => {
    const { frontier, finite, excluded } = paretoFrontier([p('ok', 1, 5), p('nan', NaN, 1), p('inf', 0.5, Infinity), p('neg', -Infinity, 1)]);
    expect(ids(frontier)).toEqual(['ok']);
    expect(ids(finite)).toEqual(['ok']);
    expect(excluded).toEqual([
      { id: 'nan', reason: 'x is NaN' },
      { id: 'inf', reason: 'y is Infinity' },
      { id: 'neg', reason: 'x is -Infinity' },
    ]);
  });

  it('agrees with the brute-force definition on random points', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    for (let trial = 0; trial < 50; trial++) {
      // coarse values so ties happen
      const points = Array.from({ length: 25 }, (_, i) => p(`p${i}`, Math.floor(rand() * 8), Math.floor(rand() * 8)));
      const expected = points.filter((a) => !points.some((b) => dominates(b, a))).map((a) => a.id).sort();
      expect(ids(paretoFrontier(points).frontier).sort()).toEqual(expected);
    }
  });

  it('does not reorder its input', () => {
    const points = [p('b', 2, 1), p('a', 1, 2)];
    paretoFrontier(points);
    expect(ids(points)).toEqual(['b', 'a']);
  });
});

describe('series', () => {
  const points = [p('f32', 32, 10), p('w4g', 4.3, 11), p('w4r', 4, 12), p('w3g', 3.3, 14), p('w3r', 3, 13)];
  const family = (q: ParetoPoint) => (q.id === 'f32' ? 'f32' : q.id.endsWith('g') ? 'g128' : 'row');

  it('groups in order of first appearance', () => {
    const groups = groupBySeries(points, family);
    expect([...groups.keys()]).toEqual(['f32', 'g128', 'row']);
    expect(ids(groups.get('row')!)).toEqual(['w4r', 'w3r']);
  });

  it('computes a frontier per series', () => {
    const fronts = frontierBySeries(points, family);
    expect(ids(fronts.get('g128')!.frontier)).toEqual(['w3g', 'w4g']);
    expect(ids(fronts.get('row')!.frontier)).toEqual(['w3r', 'w4r']);
    expect(ids(fronts.get('f32')!.frontier)).toEqual(['f32']);
  });
});
