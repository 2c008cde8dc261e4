/**
 * A mistake the user can fix: a bad input, a missing tool, a service that is not
 * running. Its message names what was wrong and says how to fix it. Anything else
 * that is thrown is a bug or an outage, and is reported as such.
 */
export class ConfigurationError extends Error {
  override name = "ConfigurationError";
}

/** The message of anything thrown, including values that are not `Error`s. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === "string") return err;
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}

/** Adds lower-case context on the way up, keeping the original as `cause`. */
export function withContext(context: string, err: unknown): Error {
  const message = `${context}: ${errorMessage(err)}`;
  return err instanceof ConfigurationError
    ? new ConfigurationError(message, { cause: err })
    : new Error(message, { cause: err });
}
