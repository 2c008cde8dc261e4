"""Request bodies for `npm run bench:service`, cut from a real synthetic image.

The image is a 4 x 4 mosaic of cut-outs from scripts/models/synth.py's generator (the one
behind the training and evaluation data, seed 20260101), 256 x 256 float32 counts = 16
tiles; the one-tile payload is its first point-source cut-out (so detections and NMS run). Both are JSON (a 2-D array of
rows, values rounded to 0.01 counts), the format both servers decode.

usage: python make_payloads.py OUT_DIR  -> OUT_DIR/payload-64.json, OUT_DIR/payload-256.json
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "models"))
import synth  # noqa: E402

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
x, labels = synth.make_classification(20260101, 16)
image = x.reshape(4, 4, 64, 64).transpose(0, 2, 1, 3).reshape(256, 256)


def dump(name, array):
    rows = [[round(float(v), 2) for v in row] for row in array]
    with open(os.path.join(out, name), "w") as fh:
        json.dump(rows, fh, separators=(",", ":"))


dump("payload-256.json", image)
first = int(list(labels).index(synth.CLASSES.index("point_source")))
row, col = divmod(first, 4)
dump("payload-64.json", image[row * 64 : (row + 1) * 64, col * 64 : (col + 1) * 64])
print(json.dumps({"dir": out, "files": ["payload-64.json", "payload-256.json"]}))
