#!/usr/bin/python3
"""Reproducible build of the AstroLens models (see README.md next to this file).

    /usr/bin/python3 scripts/models/build.py --version v1|v2|all [--no-fixtures] [--out DIR]

Writes service/models/<v>/{classifier.onnx,detector.onnx,manifest.json}, the evaluation
fixtures in test/fixtures/eval/ (deterministic, identical for every version) and a full
report in .local/models-build/<v>/report.json. Exported ONNX files are then checked
with onnxruntime (verify_onnx.py, run in .local/models-venv).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import time
import warnings

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "2")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import synth  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS_DIR = os.path.join(ROOT, "service", "models")
EVAL_DIR = os.path.join(ROOT, "test", "fixtures", "eval")
WORK_DIR = os.path.join(ROOT, ".local", "models-build")
VENV_PY = os.path.join(ROOT, ".local", "models-venv", "bin", "python")
THREADS = 2
OPSET = 13

# Everything that defines a version. Sub-seeds: classifier training data = dataSeed*1000+1,
# detector training fields = dataSeed*1000+2, OOD-threshold calibration = dataSeed*1000+3.
VERSIONS = {
    "v1": dict(semver="1.0.0", seed=1, dataSeed=1, depth=2, samples=4000, epochs=6, lr=2e-3,
               detWidth=12, detSamples=2000, detEpochs=6),
    "v2": dict(semver="2.0.0", seed=2, dataSeed=2, depth=4, samples=14000, epochs=10, lr=2e-3,
               detWidth=16, detSamples=5000, detEpochs=10),
}
# Fixed held-out seeds (never used for training or calibration).
EVAL_SEEDS = dict(synthetic=9001, ood_real=9100, ood_synth=9101, detection=9201,
                  big_synthetic=9002, big_ood_synth=9102, big_ood_real=9103, big_detection=9202)
EVAL_SIZES = dict(synthetic=500, ood_real_per_file=10, ood_synth=50, detection=50,
                  big_synthetic=2500, big_ood_synth=800, big_ood_real_per_file=40, big_detection=500)
TOLERANCE = {"accuracy": 0.02, "macroF1": 0.02, "detectorMap50": 0.03}

CONF_THRESHOLD = 0.25
IOU_THRESHOLD = 0.45


def set_determinism(seed: int) -> None:
    torch.manual_seed(seed)
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False


# =========================================================================== models
class Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.hd = heads, dim // heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).reshape(b, t, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-2, -1) * (self.hd ** -0.5), dim=-1)
        x = x + self.proj((a @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class ViT(nn.Module):
    """Tiny ViT: 64x64x1, patch 8 (64 tokens + CLS), dim 64, 4 heads."""

    def __init__(self, depth: int, dim: int = 64, heads: int = 4, patch: int = 8, classes: int = 5):
        super().__init__()
        self.patch = nn.Conv2d(1, dim, patch, patch)
        n = (synth.TILE // patch) ** 2
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, n + 1, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        nn.init.trunc_normal_(self.cls, std=0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], dim=1) + self.pos
        emb = self.norm(self.blocks(t))[:, 0]
        return self.head(emb), emb


def _cbs(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.SiLU())


class Detector(nn.Module):
    """Stride-4 single-scale CNN; output [N, 4 + 1, 256] in the YOLOv8 layout:
    cx, cy, w, h in input pixels, then sigmoid class score, anchors row-major."""

    STRIDE, GRID, MAXWH = 4, 16, 32.0

    def __init__(self, w: int):
        super().__init__()
        self.body = nn.Sequential(
            _cbs(1, w, 1), _cbs(w, 2 * w, 2), _cbs(2 * w, 2 * w, 1),
            _cbs(2 * w, 4 * w, 2), _cbs(4 * w, 4 * w, 1), _cbs(4 * w, 4 * w, 1),
        )
        self.head = nn.Conv2d(4 * w, 5, 1)
        g = torch.arange(self.GRID, dtype=torch.float32)
        gy, gx = torch.meshgrid(g, g, indexing="ij")
        self.register_buffer("gx", gx.reshape(1, self.GRID, self.GRID))
        self.register_buffer("gy", gy.reshape(1, self.GRID, self.GRID))

    def raw(self, x):
        r = self.head(self.body(x))
        s = self.STRIDE
        cx = (self.gx + torch.sigmoid(r[:, 0]) * 2 - 0.5) * s
        cy = (self.gy + torch.sigmoid(r[:, 1]) * 2 - 0.5) * s
        w = torch.sigmoid(r[:, 2]) * self.MAXWH
        h = torch.sigmoid(r[:, 3]) * self.MAXWH
        return torch.stack([cx, cy, w, h], 1), r[:, 4]

    def forward(self, x):
        box, logit = self.raw(x)
        out = torch.cat([box, torch.sigmoid(logit).unsqueeze(1)], 1)
        return out.flatten(2)


# =========================================================================== training
def _augment(x, g):
    """Random flips / transposes (all classes are orientation-free)."""
    n = x.shape[0]
    m = torch.rand(3, n, generator=g) < 0.5
    x = torch.where(m[0, :, None, None, None], x.flip(-1), x)
    x = torch.where(m[1, :, None, None, None], x.flip(-2), x)
    return torch.where(m[2, :, None, None, None], x.transpose(-1, -2), x)


def _cosine(step, total, warm):
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def train_classifier(cfg, x, y, log):
    set_determinism(cfg["seed"])
    model = ViT(cfg["depth"])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=0.05)
    bs, n = 128, x.shape[0]
    steps = cfg["epochs"] * (n // bs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _cosine(s, steps, n // bs))
    g = torch.Generator().manual_seed(cfg["seed"])
    xt, yt = torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)
    for ep in range(cfg["epochs"]):
        t0, tot, correct = time.time(), 0.0, 0
        model.train()
        perm = torch.randperm(n, generator=g)
        for i in range(n // bs):
            idx = perm[i * bs : (i + 1) * bs]
            xb, yb = _augment(xt[idx], g), yt[idx]
            logits, _ = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * bs
            correct += (logits.argmax(1) == yb).sum().item()
        log(f"  classifier epoch {ep + 1}/{cfg['epochs']} loss {tot / (n // bs * bs):.4f} "
            f"train-acc {correct / (n // bs * bs):.4f} ({time.time() - t0:.1f}s)")
    return model.eval()


def detection_targets(boxes_list):
    n, G, S = len(boxes_list), Detector.GRID, Detector.STRIDE
    obj = np.zeros((n, G, G), np.float32)
    box = np.zeros((n, 4, G, G), np.float32)
    for i, bx in enumerate(boxes_list):
        # larger boxes last so they win a shared cell
        for x0, y0, w, h in sorted(bx.tolist(), key=lambda b: b[2] * b[3]):
            cx, cy = x0 + w / 2, y0 + h / 2
            gx, gy = min(G - 1, int(cx // S)), min(G - 1, int(cy // S))
            obj[i, gy, gx] = 1.0
            box[i, :, gy, gx] = (cx, cy, w, h)
    return obj, box


def _xywhc_to_xyxy(b):
    return torch.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], 1)


def _iou_aligned(a, b):
    a, b = _xywhc_to_xyxy(a), _xywhc_to_xyxy(b)
    lt, rb = torch.maximum(a[:, :2], b[:, :2]), torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])  # noqa: E731
    return inter / (area(a) + area(b) - inter + 1e-9)


def train_detector(cfg, x, boxes, log):
    set_determinism(cfg["seed"] + 100)
    model = Detector(cfg["detWidth"])
    obj_t, box_t = (torch.from_numpy(a) for a in detection_targets(boxes))
    xt = torch.from_numpy(x).unsqueeze(1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    bs, n = 64, x.shape[0]
    steps = cfg["detEpochs"] * (n // bs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _cosine(s, steps, n // bs))
    g = torch.Generator().manual_seed(cfg["seed"] + 100)
    pos_w = torch.tensor(4.0)
    for ep in range(cfg["detEpochs"]):
        t0, tot = time.time(), 0.0
        model.train()
        perm = torch.randperm(n, generator=g)
        for i in range(n // bs):
            idx = perm[i * bs : (i + 1) * bs]
            pbox, logit = model.raw(xt[idx])
            ot, bt = obj_t[idx], box_t[idx]
            l_obj = F.binary_cross_entropy_with_logits(logit, ot, pos_weight=pos_w)
            m = ot > 0
            pb = pbox.permute(0, 2, 3, 1)[m]
            tb = bt.permute(0, 2, 3, 1)[m]
            l_box = (F.l1_loss(pb, tb, reduction="none").sum(1) / Detector.STRIDE).mean()
            l_iou = (1 - _iou_aligned(pb, tb)).mean()
            loss = l_obj + 0.5 * l_box + 2.0 * l_iou
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item()
        log(f"  detector epoch {ep + 1}/{cfg['detEpochs']} loss {tot / (n // bs):.4f} ({time.time() - t0:.1f}s)")
    return model.eval()


# =========================================================================== evaluation
@torch.no_grad()
def run_classifier(model, xn, bs=500):
    outs = [model(torch.from_numpy(xn[i : i + bs]).unsqueeze(1)) for i in range(0, len(xn), bs)]
    return (torch.cat([o[0] for o in outs]).numpy().astype(np.float64),
            torch.cat([o[1] for o in outs]).numpy().astype(np.float64))


@torch.no_grad()
def run_detector(model, xn, bs=250):
    return torch.cat([model(torch.from_numpy(xn[i : i + bs]).unsqueeze(1)) for i in range(0, len(xn), bs)]).numpy()


def cls_metrics(logits, y):
    pred = logits.argmax(1)
    k = len(synth.CLASSES)
    recall, f1 = {}, []
    for c in range(k):
        tp = int(((pred == c) & (y == c)).sum())
        fn = int(((pred != c) & (y == c)).sum())
        fp = int(((pred == c) & (y != c)).sum())
        r = tp / max(1, tp + fn)
        p = tp / max(1, tp + fp)
        recall[synth.CLASSES[c]] = r
        f1.append(0.0 if p + r == 0 else 2 * p * r / (p + r))
    cm = np.zeros((k, k), int)
    np.add.at(cm, (y, pred), 1)
    return {"accuracy": float((pred == y).mean()), "macroF1": float(np.mean(f1)),
            "perClassRecall": recall, "confusion": cm.tolist()}


def softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def ood_fit(emb, y):
    k = len(synth.CLASSES)
    means = np.stack([emb[y == c].mean(0) for c in range(k)])
    centred = emb - means[y]
    cov = centred.T @ centred / len(emb)
    cov += 1e-6 * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
    return means, np.linalg.inv(cov)


def ood_scores(logits, emb, means, precision):
    """The three scores as the service computes them (service/models/README.md)."""
    msp = softmax(logits).max(1)
    m = logits.max(1)
    energy = m + np.log(np.exp(logits - m[:, None]).sum(1))
    d = emb[:, None, :] - means[None]
    maha = np.sqrt(np.maximum(np.einsum("nki,ij,nkj->nk", d, precision, d), 0)).min(1)
    return {"msp": msp, "energy": energy, "mahalanobis": maha}


def ood_thresholds(scores, tpr):
    """Keep >= tpr of in-distribution tiles in: msp/energy in when >= t, mahalanobis when <= t."""
    n = len(scores["msp"])
    k = int(math.floor((1 - tpr) * n))  # number allowed out
    out = {}
    for name in ("msp", "energy"):
        s = np.sort(scores[name])
        out[name] = float(s[k])
    s = np.sort(scores["mahalanobis"])
    out["mahalanobis"] = float(s[n - 1 - k])
    return out


def ood_votes(scores, th):
    return ((scores["msp"] < th["msp"]).astype(int) + (scores["energy"] < th["energy"]).astype(int)
            + (scores["mahalanobis"] > th["mahalanobis"]).astype(int))


def auroc(pos, neg):
    """P(score_pos > score_neg), ties half (Mann-Whitney)."""
    s = np.concatenate([pos, neg])
    order = s.argsort(kind="mergesort")
    ranks = np.empty(len(s))
    ss = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and ss[j + 1] == ss[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    rp = ranks[: len(pos)].sum()
    return float((rp - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def ood_report(id_scores, ood_sc, th, min_votes=2):
    res = {}
    for name in ("msp", "energy", "mahalanobis"):
        sign = -1 if name == "mahalanobis" else 1  # orient: higher = in-distribution
        res[name] = auroc(sign * id_scores[name], sign * ood_sc[name])
    v_id, v_ood = ood_votes(id_scores, th), ood_votes(ood_sc, th)
    res["ensembleTpr"] = float((v_id < min_votes).mean())
    res["ensembleOodFlagged"] = float((v_ood >= min_votes).mean())
    return res


def _iou_matrix(a, b):
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    ar = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])  # noqa: E731
    return inter / (ar(a)[:, None] + ar(b)[None] - inter + 1e-9)


def decode(out, conf, iou):
    """YOLOv8 decode as the service does it: score >= conf, greedy NMS at iou.
    out: [5, anchors] -> (xyxy [k,4], scores [k])."""
    s = out[4]
    keep = s >= conf
    b, s = out[:4, keep].T, s[keep]
    xyxy = np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], 1)
    order = np.argsort(-s, kind="stable")
    sel = []
    while len(order):
        i = order[0]
        sel.append(i)
        if len(order) == 1:
            break
        ious = _iou_matrix(xyxy[i : i + 1], xyxy[order[1:]])[0]
        order = order[1:][ious <= iou]
    return xyxy[sel], s[sel]


def map50(outs, gts, conf):
    recs, npos = [], 0
    for img, (out, gt) in enumerate(zip(outs, gts)):
        det, sc = decode(out, conf, IOU_THRESHOLD)
        g = np.asarray(gt, np.float64).reshape(-1, 4)
        gxy = np.concatenate([g[:, :2], g[:, :2] + g[:, 2:]], 1)
        npos += len(g)
        used = np.zeros(len(g), bool)
        ious = _iou_matrix(det, gxy) if len(det) and len(g) else np.zeros((len(det), len(g)))
        for j in range(len(det)):  # already sorted by score within the image
            k = int(ious[j].argmax()) if len(g) else -1
            tp = k >= 0 and ious[j, k] >= 0.5 and not used[k]
            if tp:
                used[k] = True
            recs.append((sc[j], tp))
    if not recs:
        return 0.0
    recs.sort(key=lambda r: -r[0])
    tp = np.cumsum([r[1] for r in recs])
    fp = np.cumsum([not r[1] for r in recs])
    rec, prec = tp / npos, tp / (tp + fp)
    mrec = np.concatenate([[0], rec, [rec[-1]]])
    mpre = np.concatenate([[1], prec, [0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = np.where(mrec[1:] != mrec[:-1])[0]
    return float(((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]).sum())


# =========================================================================== fixtures
def write_fits(path, data, **cards):
    """BITPIX=16 with BSCALE/BZERO chosen per image (min..max over the int16 range);
    round-trips within bscale/2."""
    from astropy.io import fits

    d = np.asarray(data, np.float64)
    if not np.isfinite(d).all():
        d = np.where(np.isfinite(d), d, np.median(d[np.isfinite(d)]))
    lo, hi = float(d.min()), float(d.max())
    bscale = (hi - lo) / 65534.0 if hi > lo else 1.0
    bzero = (hi + lo) / 2.0
    q = np.clip(np.round((d - bzero) / bscale), -32767, 32767).astype(">i2")
    hdu = fits.PrimaryHDU(q)
    hdu.header["BSCALE"] = bscale
    hdu.header["BZERO"] = bzero
    for k, v in cards.items():
        hdu.header[k] = v
    hdu.writeto(path, overwrite=True)
    back = read_fits(path)
    assert np.abs(back - d).max() <= bscale * 0.5 + 1e-6 * max(1.0, abs(bzero)), path
    return back


def read_fits(path):
    from astropy.io import fits

    with fits.open(path) as h:
        return np.asarray(h[0].data, np.float32)


def build_fixtures(write, log):
    """The held-out sets (deterministic). Returns them as the gate will see them: read back
    from the quantised FITS files."""
    os.makedirs(EVAL_DIR, exist_ok=True)
    sets = {}
    x, y = synth.make_classification(EVAL_SEEDS["synthetic"], EVAL_SIZES["synthetic"])
    xr, srcs, missing = synth.make_ood_real(EVAL_SEEDS["ood_real"], EVAL_SIZES["ood_real_per_file"])
    if missing:
        log(f"  WARNING real FITS missing (skipped): {missing}")
    xo, kinds = synth.make_ood_synthetic(EVAL_SEEDS["ood_synth"], EVAL_SIZES["ood_synth"])
    xd, boxes = synth.make_detection(EVAL_SEEDS["detection"], EVAL_SIZES["detection"])

    def emit(folder, name, classes, arrays, extra):
        d = os.path.join(EVAL_DIR, folder)
        os.makedirs(d, exist_ok=True)
        items, back = [], []
        for i, (a, e) in enumerate(zip(arrays, extra)):
            rel = f"{folder}/{i + 1:04d}.fits"
            p = os.path.join(EVAL_DIR, rel)
            if write:
                back.append(write_fits(p, a, ORIGIN="astrolens scripts/models", LABEL=e.get("label", "source")))
            else:
                back.append(read_fits(p))
            items.append({"file": rel, **e})
        man = {"schemaVersion": 1, "name": name, "classes": classes, "items": items}
        if write:
            with open(os.path.join(d, "manifest.json"), "w") as f:
                json.dump(man, f, indent=1)
                f.write("\n")
        return np.stack(back)

    sets["synthetic"] = (emit("synthetic", "astrolens-synthetic-heldout", synth.CLASSES, x,
                              [{"label": synth.CLASSES[c]} for c in y]), y)
    ood_x = np.concatenate([xr, xo])
    ood_meta = [{"label": "ood", "source": f"real:{s}"} for s in srcs] + \
               [{"label": "ood", "source": f"synthetic:{k}"} for k in kinds]
    sets["ood"] = (emit("ood", "astrolens-ood", ["ood"], ood_x, ood_meta), [m["source"] for m in ood_meta])
    rbox = [np.round(b, 3) for b in boxes]
    sets["detection"] = (emit("detection", "astrolens-detection-heldout", ["source"], xd,
                              [{"boxes": b.tolist()} for b in rbox]), rbox)
    return sets


# =========================================================================== export + verify
def export(model, path, sample, input_name, output_names):
    dyn = {input_name: {0: "N"}, **{o: {0: "N"} for o in output_names}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, sample, path, opset_version=OPSET, input_names=[input_name],
                          output_names=output_names, dynamic_axes=dyn, do_constant_folding=True)
    import onnx

    onnx.checker.check_model(onnx.load(path))


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def torch_version():
    v = torch.__version__
    try:
        deb = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "python3-torch"],
                             capture_output=True, text=True, check=True).stdout.strip()
        if deb:
            v = f"{v} (Debian python3-torch {deb})"
    except Exception:  # noqa: BLE001
        pass
    return v


def r6(v):
    return float(f"{v:.6g}")


# =========================================================================== version build
def build_version(name, fixtures, out_root, log):
    cfg = VERSIONS[name]
    t_start = time.time()
    out_dir = os.path.join(out_root, name)
    work = os.path.join(WORK_DIR, name if out_root == MODELS_DIR else f"{name}-{os.path.basename(out_root)}")
    os.makedirs(out_dir, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    ds = cfg["dataSeed"]
    log(f"[{name}] generating {cfg['samples']} cut-outs + {cfg['detSamples']} star fields (dataSeed {ds})")
    x, y = synth.make_classification(ds * 1000 + 1, cfg["samples"])
    xn = synth.normalise_batch(x)
    xd, bd = synth.make_detection(ds * 1000 + 2, cfg["detSamples"])
    xdn = synth.normalise_batch(xd)
    xc, yc = synth.make_classification(ds * 1000 + 3, 1500)  # OOD threshold calibration
    xcn = synth.normalise_batch(xc)

    t0 = time.time()
    clf = train_classifier(cfg, xn, y, log)
    t_clf = time.time() - t0
    t0 = time.time()
    det = train_detector(cfg, xdn, bd, log)
    t_det = time.time() - t0

    # --- OOD statistics: training embeddings -> means + tied precision; thresholds on calibration set
    _, emb_tr = run_classifier(clf, xn)
    means, precision = ood_fit(emb_tr, y)
    means, precision = means.astype(np.float32).astype(np.float64), precision.astype(np.float32).astype(np.float64)
    lc, ec = run_classifier(clf, xcn)
    th = ood_thresholds(ood_scores(lc, ec, means, precision), 0.95)

    # --- held-out metrics on the fixtures exactly as stored (quantised FITS)
    fx, fy = fixtures["synthetic"]
    lf, ef = run_classifier(clf, synth.normalise_batch(fx))
    m_fix = cls_metrics(lf, fy)
    ox, osrc = fixtures["ood"]
    lo, eo = run_classifier(clf, synth.normalise_batch(ox))
    s_id, s_ood = ood_scores(lf, ef, means, precision), ood_scores(lo, eo, means, precision)
    ood_fix = ood_report(s_id, s_ood, th)
    is_real = np.array([s.startswith("real:") for s in osrc])
    ood_fix_real = ood_report(s_id, {k: v[is_real] for k, v in s_ood.items()}, th)
    ood_fix_syn = ood_report(s_id, {k: v[~is_real] for k, v in s_ood.items()}, th)
    dx, dboxes = fixtures["detection"]
    dout = run_detector(det, synth.normalise_batch(dx))
    map_fix = map50(dout, dboxes, CONF_THRESHOLD)
    map_fix_low = map50(dout, dboxes, 0.001)

    # --- larger held-out sets (report only; the same generator, other seeds)
    bx, by = synth.make_classification(EVAL_SEEDS["big_synthetic"], EVAL_SIZES["big_synthetic"])
    lb, eb = run_classifier(clf, synth.normalise_batch(bx))
    m_big = cls_metrics(lb, by)
    bo, bk = synth.make_ood_synthetic(EVAL_SEEDS["big_ood_synth"], EVAL_SIZES["big_ood_synth"])
    br, _, _ = synth.make_ood_real(EVAL_SEEDS["big_ood_real"], EVAL_SIZES["big_ood_real_per_file"])
    sb_id = ood_scores(lb, eb, means, precision)
    lbo, ebo = run_classifier(clf, synth.normalise_batch(bo))
    lbr, ebr = run_classifier(clf, synth.normalise_batch(br))
    ood_big_syn = ood_report(sb_id, ood_scores(lbo, ebo, means, precision), th)
    ood_big_real = ood_report(sb_id, ood_scores(lbr, ebr, means, precision), th)
    bkinds = np.array(bk)
    s_bo = ood_scores(lbo, ebo, means, precision)
    per_kind = {k: ood_report(sb_id, {n: v[bkinds == k] for n, v in s_bo.items()}, th) for k in synth.OOD_KINDS}
    bdx, bdb = synth.make_detection(EVAL_SEEDS["big_detection"], EVAL_SIZES["big_detection"])
    bdo = run_detector(det, synth.normalise_batch(bdx))
    map_big = map50(bdo, bdb, CONF_THRESHOLD)
    map_big_low = map50(bdo, bdb, 0.001)

    # --- export + reference outputs for the onnxruntime check
    cpath, dpath = os.path.join(out_dir, "classifier.onnx"), os.path.join(out_dir, "detector.onnx")
    export(clf, cpath, torch.from_numpy(synth.normalise_batch(fx[:2])).unsqueeze(1), "input", ["logits", "embedding"])
    export(det, dpath, torch.from_numpy(synth.normalise_batch(dx[:2])).unsqueeze(1), "images", ["output0"])
    ref = {}
    with torch.no_grad():
        for tag, arr in (("b37", synth.normalise_batch(fx[:37])), ("b1", synth.normalise_batch(fx[37:38]))):
            t = torch.from_numpy(arr).unsqueeze(1)
            lg, em = clf(t)
            ref[f"cls_{tag}_input"], ref[f"cls_{tag}_logits"], ref[f"cls_{tag}_embedding"] = t.numpy(), lg.numpy(), em.numpy()
        for tag, arr in (("b37", synth.normalise_batch(dx[:37])), ("b1", synth.normalise_batch(dx[37:38]))):
            t = torch.from_numpy(arr).unsqueeze(1)
            ref[f"det_{tag}_input"], ref[f"det_{tag}_output0"] = t.numpy(), det(t).numpy()
    np.savez(os.path.join(work, "reference.npz"), **ref)

    manifest = {
        "schemaVersion": 1,
        "name": "astrolens",
        "version": cfg["semver"],
        "tileSize": synth.TILE,
        "normalisation": {"method": "robust-asinh", "softening": synth.SOFTENING, "padding": "median"},
        "classifier": {
            "file": "classifier.onnx", "sha256": sha256(cpath),
            "input": {"name": "input", "shape": [-1, 1, 64, 64], "dtype": "float32"},
            "outputs": {"logits": "logits", "embedding": "embedding"},
            "embeddingDim": 64,
            "classes": synth.CLASSES,
        },
        "ood": {
            "tpr": 0.95,
            "thresholds": {k: r6(v) if k != "mahalanobis" else float(f"{v:.7g}") for k, v in th.items()},
            "rule": "majority",
            "minVotes": 2,
            "mahalanobis": {
                "classMeans": [[float(np.float32(v)) for v in row] for row in means],
                "precision": [[float(np.float32(v)) for v in row] for row in precision],
            },
        },
        "detector": {
            "file": "detector.onnx", "sha256": sha256(dpath),
            "input": {"name": "images", "shape": [-1, 1, 64, 64], "dtype": "float32"},
            "output": {"name": "output0", "layout": "yolov8"},
            "classes": ["source"],
            "confidenceThreshold": CONF_THRESHOLD,
            "iouThreshold": IOU_THRESHOLD,
        },
        "training": {
            "seed": cfg["seed"], "dataSeed": ds, "samples": cfg["samples"], "epochs": cfg["epochs"],
            "detectorSamples": cfg["detSamples"], "detectorEpochs": cfg["detEpochs"],
            "torch": torch_version(), "onnxOpset": OPSET,
        },
        "metrics": {
            "accuracy": r6(m_fix["accuracy"]), "macroF1": r6(m_fix["macroF1"]),
            "perClassRecall": {k: r6(v) for k, v in m_fix["perClassRecall"].items()},
            "oodAuroc": {k: r6(ood_fix[k]) for k in ("msp", "energy", "mahalanobis")},
            "detectorMap50": r6(map_fix),
        },
        "tolerance": TOLERANCE,
    }
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")

    report = {
        "version": name, "config": cfg,
        "seconds": {"total": round(time.time() - t_start, 1), "classifier": round(t_clf, 1), "detector": round(t_det, 1)},
        "fixtures": {"classification": m_fix, "ood": ood_fix, "oodReal": ood_fix_real, "oodSynthetic": ood_fix_syn,
                     "detectorMap50@conf0.25": map_fix, "detectorMap50@conf0.001": map_fix_low},
        "heldoutLarge": {"classification": m_big, "oodSynthetic": ood_big_syn, "oodReal": ood_big_real,
                         "oodSyntheticPerKind": per_kind,
                         "detectorMap50@conf0.25": map_big, "detectorMap50@conf0.001": map_big_low,
                         "sizes": {"classification": len(by), "oodSynthetic": len(bo), "oodReal": len(br),
                                   "detection": len(bdb)}},
        "thresholds": th,
        "files": {os.path.basename(p): os.path.getsize(p) for p in (cpath, dpath, os.path.join(out_dir, "manifest.json"))},
    }
    with open(os.path.join(work, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    log(f"[{name}] fixtures: acc {m_fix['accuracy']:.4f} macroF1 {m_fix['macroF1']:.4f} "
        f"recall {json.dumps({k: round(v, 3) for k, v in m_fix['perClassRecall'].items()})}")
    log(f"[{name}] fixtures: oodAuroc msp {ood_fix['msp']:.4f} energy {ood_fix['energy']:.4f} "
        f"maha {ood_fix['mahalanobis']:.4f} | ensemble TPR {ood_fix['ensembleTpr']:.3f} flagged {ood_fix['ensembleOodFlagged']:.3f} "
        f"| mAP50 {map_fix:.4f} (conf .001: {map_fix_low:.4f})")
    log(f"[{name}] large held-out ({len(by)}): acc {m_big['accuracy']:.4f} macroF1 {m_big['macroF1']:.4f} "
        f"recall {json.dumps({k: round(v, 3) for k, v in m_big['perClassRecall'].items()})}; "
        f"mAP50 {map_big:.4f} (conf .001: {map_big_low:.4f})")
    log(f"[{name}] wall {report['seconds']} files {report['files']}")
    verify(out_dir, work, log)
    return report


def verify(out_dir, work, log):
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "verify_onnx.py")
    py = VENV_PY if os.path.exists(VENV_PY) else sys.executable
    r = subprocess.run([py, script, out_dir, os.path.join(work, "reference.npz")], capture_output=True, text=True)
    for line in (r.stdout + r.stderr).strip().splitlines():
        log("  " + line)
    if r.returncode != 0:
        raise SystemExit(f"onnxruntime verification failed for {out_dir} (python: {py}); "
                         f"create the venv: see scripts/models/README.md")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", choices=["v1", "v2", "all"], required=True)
    ap.add_argument("--out", default=MODELS_DIR, help="models root (default service/models); use another to test re-runs")
    ap.add_argument("--no-fixtures", action="store_true", help="read test/fixtures/eval instead of (re)writing it")
    a = ap.parse_args()
    out_root = os.path.abspath(a.out)
    os.makedirs(WORK_DIR, exist_ok=True)
    logf = open(os.path.join(WORK_DIR, "build.log"), "a")

    def log(msg):
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    set_determinism(0)
    log(f"== build {a.version} -> {out_root} (torch {torch_version()}, numpy {np.__version__}, threads {THREADS})")
    fixtures = build_fixtures(not a.no_fixtures, log)
    for v in (["v1", "v2"] if a.version == "all" else [a.version]):
        build_version(v, fixtures, out_root, log)


if __name__ == "__main__":
    main()
