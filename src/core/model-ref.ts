/**
 * A model reference as one string, for the page's form, its saved settings
 * and the CLI's --model: an embedded id ("qlab-llama-6m"), a Hub repository
 * ("hub:Qwen/Qwen2.5-0.5B@main") or files the person picked ("local:<name>").
 */
import type { ModelRef } from './experiment';

export function modelIdOf(ref: ModelRef): string {
  switch (ref.kind) {
    case 'embedded':
      return ref.id;
    case 'hub':
      return `hub:${ref.repo}@${ref.revision}`;
    case 'local':
      return `local:${ref.name}`;
  }
}

export function modelRefFromId(id: string): ModelRef {
  if (id.startsWith('hub:')) {
    const rest = id.slice(4);
    const at = rest.lastIndexOf('@');
    return at > 0 ? { kind: 'hub', repo: rest.slice(0, at), revision: rest.slice(at + 1) } : { kind: 'hub', repo: rest, revision: 'main' };
  }
  if (id.startsWith('local:')) return { kind: 'local', name: id.slice(6) };
  return { kind: 'embedded', id };
}

/** A short name for tables and plots: the id, the repo (with a revision other than main) or the local name. */
export function modelLabelOf(ref: ModelRef): string {
  if (ref.kind === 'embedded') return ref.id;
  if (ref.kind === 'hub') return ref.revision === 'main' ? ref.repo : `${ref.repo}@${ref.revision}`;
  return ref.name;
}
