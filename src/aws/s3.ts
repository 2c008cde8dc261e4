import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";

/** Downloads one object whole; the gate's model files are small (under a few MB). */
export function s3Downloader(s3: S3Client): (bucket: string, key: string) => Promise<Uint8Array> {
  return async (bucket, key) => {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (!object.Body) throw new Error(`s3://${bucket}/${key} has no body`);
    return object.Body.transformToByteArray();
  };
}
