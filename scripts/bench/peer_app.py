"""The Python peer of the AstroLens inference service, for `npm run bench:service` only.

What a SageMaker container for these models usually looks like: FastAPI on uvicorn
(`--workers 2`, one per core), onnxruntime's Python API, numpy post-processing. It serves
the same model folder with the same contract and the same steps as service/src/inference,
ported one for one:

- decode: a JSON body, a 2-D array of rows or {"image": [[...]]} (as service/src/decode/json.ts);
- tiling: origins 0, T, 2T, ... with the last moved back to the edge (tileOrigins);
- robust-asinh per tile on its real pixels (NaN/Inf -> median, MAD scale 1.4826, scale 1
  when MAD == 0, asinh(z / softening), float64 then float32), median padding (= 0);
- both models on the request's tiles as one [N, 1, T, T] batch;
- softmax, MSP, energy (logsumexp), min Mahalanobis distance (tied precision, float64),
  the majority vote;
- YOLOv8 decode: best class per anchor, score >= confidenceThreshold, class-aware greedy
  NMS (IoU > iouThreshold drops, stable order, at most 300), clip to the tile's real
  region, shift by the tile origin, drop empty boxes;
- the response body of service/src/contract.ts (InvocationResponse).

Environment: ASTROLENS_MODEL_DIR (the model folder), BENCH_PY_INTRA_OP_THREADS (onnxruntime
intra-op threads per session, default 1: two workers on two cores). Not production code.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

MAD_TO_SIGMA = 1.4826
MAX_DETECTIONS = 300
MAX_PIXELS = 4096 * 4096

MODEL_DIR = os.path.abspath(os.environ.get("ASTROLENS_MODEL_DIR", "service/models/v1"))
with open(os.path.join(MODEL_DIR, "manifest.json"), "rb") as fh:
    _manifest_bytes = fh.read()
MANIFEST = json.loads(_manifest_bytes)
MODEL_INFO = {
    "name": MANIFEST["name"],
    "version": MANIFEST["version"],
    "manifestSha256": hashlib.sha256(_manifest_bytes).hexdigest(),
}
TILE = int(MANIFEST["tileSize"])
SOFTENING = float(MANIFEST["normalisation"]["softening"])
CLASSES = list(MANIFEST["classifier"]["classes"])
OOD = MANIFEST["ood"]
CLASS_MEANS = np.asarray(OOD["mahalanobis"]["classMeans"], dtype=np.float64)  # [K, D]
PRECISION = np.asarray(OOD["mahalanobis"]["precision"], dtype=np.float64)  # [D, D]
DET = MANIFEST["detector"]
DET_CLASSES = list(DET["classes"])


def _session(part: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = int(os.environ.get("BENCH_PY_INTRA_OP_THREADS", "1"))
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        os.path.join(MODEL_DIR, MANIFEST[part]["file"]), options, providers=["CPUExecutionProvider"]
    )


CLASSIFIER = _session("classifier")
DETECTOR = _session("detector")
C_IN = MANIFEST["classifier"]["input"]["name"]
C_OUT = [MANIFEST["classifier"]["outputs"]["logits"], MANIFEST["classifier"]["outputs"]["embedding"]]
D_IN = DET["input"]["name"]
D_OUT = [DET["output"]["name"]]


class InputError(Exception):
    pass


# ----------------------------------------------------------------------------- decode
def decode_json(body: bytes) -> np.ndarray:
    try:
        parsed = json.loads(body)
    except ValueError as err:
        raise InputError(f"body is not valid JSON ({err})") from err
    rows = parsed["image"] if isinstance(parsed, dict) and "image" in parsed else parsed
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], list) or not rows[0]:
        raise InputError("send a 2-D array of numbers, one array per row")
    height, width = len(rows), len(rows[0])
    if width * height > MAX_PIXELS:
        raise InputError("image too large")
    try:
        image = np.asarray(rows, dtype=np.float32)
    except (ValueError, TypeError) as err:
        raise InputError(f"JSON image rows must be numbers of one length ({err})") from err
    if image.shape != (height, width):
        raise InputError("JSON image rows must all have the same length")
    return image


# ----------------------------------------------------------------------------- tiling
def tile_origins(length: int, size: int) -> list[int]:
    if length <= size:
        return [0]
    origins = list(range(0, length - size, size))
    origins.append(length - size)
    return origins


def normalise_robust_asinh(real: np.ndarray) -> np.ndarray:
    """One tile's real pixels (float64, any shape) -> float32 (see the module docstring)."""
    finite = np.isfinite(real)
    if finite.all():
        v = real
        median = float(np.median(v))
    else:
        median = float(np.median(real[finite])) if finite.any() else 0.0
        v = np.where(finite, real, median)
    mad = float(np.median(np.abs(v - median)))
    scale = MAD_TO_SIGMA * mad if mad != 0 else 1.0
    return np.arcsinh(((v - median) / scale) / SOFTENING).astype(np.float32)


def cut_tiles(image: np.ndarray) -> tuple[list[tuple[int, int, int, int]], np.ndarray]:
    """-> (regions [(x, y, w, h)], batch [N, 1, T, T] float32), row by row from the top-left."""
    height, width = image.shape
    regions = [
        (x, y, min(TILE, width - x), min(TILE, height - y))
        for y in tile_origins(height, TILE)
        for x in tile_origins(width, TILE)
    ]
    batch = np.zeros((len(regions), 1, TILE, TILE), dtype=np.float32)
    src = image.astype(np.float64)
    for i, (x, y, w, h) in enumerate(regions):
        batch[i, 0, :h, :w] = normalise_robust_asinh(src[y : y + h, x : x + w])
    return regions, batch


# ----------------------------------------------------------------------------- scores
def ood_scores(logits: np.ndarray, embedding: np.ndarray):
    """logits [N, C], embedding [N, D] (float32) -> probs, msp, energy, mahalanobis (float64)."""
    lg = logits.astype(np.float64)
    mx = lg.max(axis=1, keepdims=True)
    ex = np.exp(lg - mx)
    total = ex.sum(axis=1, keepdims=True)
    probs = ex / total
    msp = 1.0 / total[:, 0]
    energy = mx[:, 0] + np.log(total[:, 0])
    diff = embedding.astype(np.float64)[:, None, :] - CLASS_MEANS[None, :, :]  # [N, K, D]
    q = np.einsum("nkd,de,nke->nk", diff, PRECISION, diff)
    maha = np.sqrt(np.maximum(q, 0.0)).min(axis=1)
    return probs, msp, energy, maha


def verdict(msp: float, energy: float, maha: float) -> tuple[bool, list[str]]:
    th = OOD["thresholds"]
    votes = []
    if not msp >= th["msp"]:
        votes.append("msp")
    if not energy >= th["energy"]:
        votes.append("energy")
    if not maha <= th["mahalanobis"]:
        votes.append("mahalanobis")
    return len(votes) >= OOD["minVotes"], votes


# ----------------------------------------------------------------------------- YOLO
def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Corner boxes a [4] against b [M, 4] -> [M] (0 when they do not overlap)."""
    iw = np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0])
    ih = np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1])
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def decode_yolo(output: np.ndarray, region: tuple[int, int, int, int]) -> list[dict]:
    """One tile's [4 + C, anchors] output -> detections in image pixels."""
    rx, ry, rw, rh = region
    scores_all = output[4:]
    cls = scores_all.argmax(axis=0)  # first maximum, as the TS loop's strict >
    score = scores_all[cls, np.arange(output.shape[1])]
    keep = score >= DET["confidenceThreshold"]
    if not keep.any():
        return []
    cx, cy, w, h = (output[r, keep].astype(np.float64) for r in range(4))
    score = score[keep].astype(np.float64)
    cls = cls[keep]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    order = np.argsort(-score, kind="stable")
    kept: list[int] = []
    for i in order:
        if len(kept) >= MAX_DETECTIONS:
            break
        if kept:
            k = np.asarray(kept)
            same = cls[k] == cls[i]
            if same.any() and (_iou(boxes[i], boxes[k[same]]) > DET["iouThreshold"]).any():
                continue
        kept.append(int(i))
    detections = []
    for i in kept:
        x1 = min(rw, max(0.0, boxes[i, 0])) + rx
        y1 = min(rh, max(0.0, boxes[i, 1])) + ry
        x2 = min(rw, max(0.0, boxes[i, 2])) + rx
        y2 = min(rh, max(0.0, boxes[i, 3])) + ry
        if x2 <= x1 or y2 <= y1:
            continue
        detections.append(
            {
                "x": x1,
                "y": y1,
                "width": x2 - x1,
                "height": y2 - y1,
                "confidence": float(score[i]),
                "class": DET_CLASSES[int(cls[i])],
            }
        )
    return detections


# ----------------------------------------------------------------------------- analyse
def analyse(body: bytes) -> bytes:
    image = decode_json(body)
    regions, batch = cut_tiles(image)
    logits, embedding = CLASSIFIER.run(C_OUT, {C_IN: batch})
    (boxes,) = DETECTOR.run(D_OUT, {D_IN: batch})
    probs, msp, energy, maha = ood_scores(logits, embedding)
    tiles = []
    for i, region in enumerate(regions):
        anomaly, votes = verdict(msp[i], energy[i], maha[i])
        p = probs[i]
        tiles.append(
            {
                "x": region[0],
                "y": region[1],
                "width": region[2],
                "height": region[3],
                "class": CLASSES[int(p.argmax())],
                "probabilities": {name: float(p[j]) for j, name in enumerate(CLASSES)},
                "ood": {"msp": float(msp[i]), "energy": float(energy[i]), "mahalanobis": float(maha[i])},
                "anomaly": anomaly,
                "anomalyVotes": votes,
                "detections": decode_yolo(boxes[i].reshape(boxes.shape[1], -1), region),
            }
        )
    height, width = image.shape
    response = {
        "model": MODEL_INFO,
        "image": {"width": width, "height": height, "format": "json"},
        "tiles": tiles,
    }
    return json.dumps(response, allow_nan=True).encode()


app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/ping")
def ping() -> dict:
    return {"status": "ok", "model": MODEL_INFO}


@app.post("/invocations")
async def invocations(request: Request) -> Response:
    body = await request.body()
    try:
        # onnxruntime and numpy release the GIL: the thread pool lets requests overlap.
        payload = await run_in_threadpool(analyse, body)
    except InputError as err:
        return JSONResponse({"error": str(err)}, status_code=400)
    return Response(payload, media_type="application/json")


if __name__ == "__main__":  # manual check: python peer_app.py < image.json
    import sys

    sys.stdout.write(analyse(sys.stdin.buffer.read()).decode() + "\n")
