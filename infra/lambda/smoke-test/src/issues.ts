/** Zod issues as short sentences that name the field, e.g. `tiles[0].ood.msp: expected number`. */
import type { z } from "zod";

/** `["tiles", 0, "ood"]` -> `tiles[0].ood` (after `base`, when given); the root is `base` or `(root)`. */
export function fieldPath(path: readonly PropertyKey[], base = ""): string {
  let out = base;
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out === "" ? "(root)" : out;
}

/** At most `limit` issues, each `field: message`, and how many more there were. */
export function describeIssues(error: z.ZodError, base = "", limit = 3): string[] {
  const shown = error.issues.slice(0, limit).map((i) => `${fieldPath(i.path, base)}: ${i.message}`);
  const more = error.issues.length - shown.length;
  return more > 0 ? [...shown, `and ${more} more`] : shown;
}
