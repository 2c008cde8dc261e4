import { fileURLToPath } from "node:url";

export const EVAL_ROOT = fileURLToPath(new URL("../../../test/fixtures/eval/", import.meta.url));
export const SETS = {
  classification: `${EVAL_ROOT}synthetic/manifest.json`,
  ood: `${EVAL_ROOT}ood/manifest.json`,
  detection: `${EVAL_ROOT}detection/manifest.json`,
};
export const modelDir = (version: "v1" | "v2") =>
  fileURLToPath(new URL(`../../models/${version}/`, import.meta.url));
