/**
 * The accuracy-versus-cost Pareto frontier. Both coordinates are "lower is
 * better": x is a cost (weight MB, bits per weight, decode latency), y an
 * error (perplexity, KL divergence). A point is on the frontier when no other
 * point is at least as good on both and strictly better on one.
 */

export interface ParetoPoint {
  id: string;
  /** cost, lower is better */
  x: number;
  /** error, lower is better */
  y: number;
  /**
   * Why the point's numbers cannot be trusted (the run's loss became NaN or
   * infinite, src/lab/faults.ts): such a point is left out even where x and y
   * look finite (a slice measured before the fault).
   */
  fault?: string | null;
}

export interface ExcludedPoint {
  id: string;
  reason: string;
}

export interface ParetoFrontier<P extends ParetoPoint = ParetoPoint> {
  /** the non-dominated points, by x ascending (then y, then id) */
  frontier: P[];
  /** every finite point, by x ascending (then y, then id) */
  finite: P[];
  /** points left out because a coordinate is NaN or infinite, or the run had a numerical fault */
  excluded: ExcludedPoint[];
}

function notFinite(p: ParetoPoint): string | null {
  if (p.fault) return p.fault;
  const bad = (['x', 'y'] as const).filter((k) => !Number.isFinite(p[k]));
  return bad.length ? bad.map((k) => `${k} is ${p[k]}`).join(', ') : null;
}

const byXThenY = (a: ParetoPoint, b: ParetoPoint): number => a.x - b.x || a.y - b.y || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** `a` dominates `b`: no worse on both coordinates and strictly better on one. */
export function dominates(a: ParetoPoint, b: ParetoPoint): boolean {
  return a.x <= b.x && a.y <= b.y && (a.x < b.x || a.y < b.y);
}

/**
 * The Pareto-optimal points among `points`. Identical points (same x and y)
 * do not dominate each other, so all of them stay on the frontier.
 */
export function paretoFrontier<P extends ParetoPoint>(points: readonly P[]): ParetoFrontier<P> {
  const excluded: ExcludedPoint[] = [];
  const finite: P[] = [];
  for (const p of points) {
    const reason = notFinite(p);
    if (reason) excluded.push({ id: p.id, reason });
    else finite.push(p);
  }
  finite.sort(byXThenY);
  // Sweep by x ascending: every earlier point costs no more, so a point is
  // dominated exactly when an earlier one has lower y, or the same y at lower x.
  const frontier: P[] = [];
  let bestY = Infinity;
  let bestYAtX = Infinity;
  for (const p of finite) {
    if (p.y < bestY) {
      bestY = p.y;
      bestYAtX = p.x;
      frontier.push(p);
    } else if (p.y === bestY && p.x === bestYAtX) {
      frontier.push(p);
    }
  }
  return { frontier, finite, excluded };
}

/** Items grouped by `keyOf`, groups in order of first appearance, items in input order. */
export function groupBySeries<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}

/** The frontier of each series on its own (e.g. the best of each method family). */
export function frontierBySeries<P extends ParetoPoint>(points: readonly P[], keyOf: (p: P) => string): Map<string, ParetoFrontier<P>> {
  const out = new Map<string, ParetoFrontier<P>>();
  for (const [key, group] of groupBySeries(points, keyOf)) out.set(key, paretoFrontier(group));
  return out;
}
