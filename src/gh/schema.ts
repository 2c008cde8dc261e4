import { z } from "zod";

/** Zod pieces for action inputs, which always arrive as strings. */
export const booleanInput = (fallback: boolean) =>
  z
    .enum(["true", "false"], { message: 'expected "true" or "false"' })
    .default(fallback ? "true" : "false")
    .transform((value) => value === "true");
