/**
 * The result pinned in the frontier plot, shared with the results table so
 * both highlight the same run. Page state only; nothing is persisted.
 */
export const pinned = $state<{ id: string | null }>({ id: null });

/** Pins `id`, or unpins it when it is already pinned. */
export function togglePin(id: string): void {
  pinned.id = pinned.id === id ? null : id;
}
