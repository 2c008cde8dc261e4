import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ModelSourceError } from "../../src/gate/errors.js";
import { parseS3Uri, resolveModelSource, type S3Downloader } from "../../src/gate/resolve.js";
import { modelDir } from "./helpers.js";

async function fakeBucket(
  prefix: string,
  tamper?: string,
): Promise<{ download: S3Downloader; keys: string[] }> {
  const objects = new Map<string, Buffer>();
  for (const f of ["manifest.json", "classifier.onnx", "detector.onnx"]) {
    const bytes = await readFile(join(modelDir("v2"), f));
    if (f === tamper) bytes.writeUInt8((bytes.at(-1) ?? 0) ^ 1, bytes.length - 1);
    objects.set(`${prefix}${f}`, bytes);
  }
  const keys: string[] = [];
  const download: S3Downloader = async (bucket, key) => {
    keys.push(`${bucket}/${key}`);
    const body = bucket === "models" ? objects.get(key) : undefined;
    if (body === undefined) throw new Error("NoSuchKey: The specified key does not exist.");
    return new Uint8Array(body);
  };
  return { download, keys };
}

describe("resolveModelSource", () => {
  it("resolves a local folder", async () => {
    const r = await resolveModelSource(modelDir("v1"));
    expect(r.model.manifest.version).toBe("1.0.0");
    await r.cleanup();
    expect(existsSync(modelDir("v1"))).toBe(true);
  });

  it("downloads an s3:// model into a temp folder and verifies it", async () => {
    const { download, keys } = await fakeBucket("astrolens/2.0.0/");
    const r = await resolveModelSource("s3://models/astrolens/2.0.0", { download });
    const local = await resolveModelSource(modelDir("v2"));
    expect(r.model.manifest).toEqual(local.model.manifest);
    expect(r.model.manifestSha256).toBe(local.model.manifestSha256);
    expect(keys.sort()).toEqual([
      "models/astrolens/2.0.0/classifier.onnx",
      "models/astrolens/2.0.0/detector.onnx",
      "models/astrolens/2.0.0/manifest.json",
    ]);
    expect(existsSync(r.model.dir)).toBe(true);
    await r.cleanup();
    expect(existsSync(r.model.dir)).toBe(false);
  });

  it("refuses a downloaded file whose sha256 does not match", async () => {
    const { download } = await fakeBucket("m/", "detector.onnx");
    await expect(resolveModelSource("s3://models/m/", { download })).rejects.toThrow(
      /s3:\/\/models\/m\/: model file .*detector\.onnx does not match the manifest/,
    );
  });

  it("names the key it could not download, and needs a downloader", async () => {
    const { download } = await fakeBucket("m/");
    await expect(resolveModelSource("s3://models/other/", { download })).rejects.toThrow(
      /cannot download s3:\/\/models\/other\/manifest\.json: NoSuchKey/,
    );
    await expect(resolveModelSource("s3://models/m/")).rejects.toThrow(ModelSourceError);
    await expect(resolveModelSource("gs://models/m/")).rejects.toThrow(/unsupported scheme/);
    await expect(resolveModelSource("/nonexistent/model")).rejects.toThrow(/does not exist/);
  });

  it("parses s3 URIs", () => {
    expect(parseS3Uri("s3://b")).toEqual({ bucket: "b", prefix: "" });
    expect(parseS3Uri("s3://b/a/b")).toEqual({ bucket: "b", prefix: "a/b/" });
    expect(() => parseS3Uri("s3:///x")).toThrow(ModelSourceError);
  });
});
