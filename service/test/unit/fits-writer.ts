/** Builds small FITS files byte by byte for tests (an independent writer, not our parser). */

export type CardValue = string | number | boolean;

/** One 80-character card; strings are quoted, logicals T/F, numbers right-aligned to col 30. */
export function card(keyword: string, value?: CardValue, comment?: string): string {
  let text = keyword.padEnd(8);
  if (value !== undefined) {
    const v =
      typeof value === "boolean"
        ? (value ? "T" : "F").padStart(20)
        : typeof value === "number"
          ? String(value).padStart(20)
          : `'${value.replace(/'/g, "''").padEnd(8)}'`;
    text += `= ${v}`;
    if (comment !== undefined) text += ` / ${comment}`;
  }
  if (text.length > 80) throw new Error(`card too long: ${text}`);
  return text.padEnd(80);
}

/** A header block sequence: the cards, END, space-padded to a multiple of 2880. */
export function header(cards: string[]): Buffer {
  const text = [...cards, "END".padEnd(80)].join("");
  return Buffer.from(text.padEnd(Math.ceil(text.length / 2880) * 2880), "latin1");
}

/** Data bytes zero-padded to a multiple of 2880. */
export function padData(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((2880 - (data.length % 2880)) % 2880)]);
}

/** Big-endian samples for a BITPIX. */
export function encode(bitpix: number, values: number[]): Buffer {
  const size = Math.abs(bitpix) / 8;
  const out = Buffer.alloc(values.length * size);
  values.forEach((v, i) => {
    const at = i * size;
    if (bitpix === 8) out.writeUInt8(v, at);
    else if (bitpix === 16) out.writeInt16BE(v, at);
    else if (bitpix === 32) out.writeInt32BE(v, at);
    else if (bitpix === 64) out.writeBigInt64BE(BigInt(v), at);
    else if (bitpix === -32) out.writeFloatBE(v, at);
    else if (bitpix === -64) out.writeDoubleBE(v, at);
    else throw new Error(`bitpix ${bitpix}`);
  });
  return out;
}

/** A primary-HDU image file. `extra` cards go after the NAXISn cards. */
export function primaryImage(bitpix: number, axes: number[], values: number[], extra: string[] = []): Buffer {
  const cards = [
    card("SIMPLE", true),
    card("BITPIX", bitpix),
    card("NAXIS", axes.length),
    ...axes.map((n, i) => card(`NAXIS${i + 1}`, n)),
    ...extra,
  ];
  return Buffer.concat([header(cards), padData(encode(bitpix, values))]);
}
