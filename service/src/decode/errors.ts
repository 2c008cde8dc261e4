/**
 * The one error type for bad client input. The HTTP server maps `status` straight onto the
 * response; the message is written for the client and says what to change.
 */
export type InputErrorStatus = 400 | 413 | 415;

export class InputError extends Error {
  override readonly name = "InputError";
  readonly status: InputErrorStatus;

  constructor(message: string, status: InputErrorStatus = 400, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
  }
}

/** Throws the 413 every decoder uses once it knows the pixel count (before allocating it). */
export function assertPixelLimit(width: number, height: number, maxPixels: number): void {
  const pixels = width * height;
  if (pixels > maxPixels) {
    throw new InputError(
      `image is ${width}x${height} = ${pixels} pixels, more than the limit of ${maxPixels}; ` +
        "send a smaller cut-out",
      413,
    );
  }
}
