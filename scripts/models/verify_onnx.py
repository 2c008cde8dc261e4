"""Check exported ONNX files with onnxruntime against the torch reference outputs.

    .local/models-venv/bin/python scripts/models/verify_onnx.py service/models/v1 .local/models-build/v1/reference.npz

Checks: input/output names and shapes from the manifest, batch sizes 37 and 1 (dynamic
batch axis), max |onnxruntime - torch| <= 1e-4 for every output, and the sha256 in the
manifest matches the file. Exit code 1 on any failure.
"""

import hashlib
import json
import os
import sys

import numpy as np
import onnxruntime as ort

TOL = 1e-4


def main(model_dir, ref_path):
    ref = np.load(ref_path)
    with open(os.path.join(model_dir, "manifest.json")) as f:
        man = json.load(f)
    ok = True
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    for key, part, outs in (("cls", "classifier", ["logits", "embedding"]), ("det", "detector", ["output0"])):
        spec = man[part]
        path = os.path.join(model_dir, spec["file"])
        with open(path, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != spec["sha256"]:
                print(f"FAIL {part}: sha256 differs from manifest")
                ok = False
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        iname = sess.get_inputs()[0].name
        onames = [o.name for o in sess.get_outputs()]
        if iname != spec["input"]["name"] or onames != outs:
            print(f"FAIL {part}: io names {iname} {onames}")
            ok = False
        for tag in ("b37", "b1"):
            x = ref[f"{key}_{tag}_input"]
            got = sess.run(None, {iname: x})
            for name, g in zip(onames, got):
                want = ref[f"{key}_{tag}_{name}"]
                diff = float(np.abs(g - want).max())
                good = g.shape == want.shape and g.shape[0] == x.shape[0] and diff <= TOL
                ok &= good
                print(f"{'ok  ' if good else 'FAIL'} {part} {name} batch {x.shape[0]}: shape {list(g.shape)} "
                      f"max|ort-torch| {diff:.2e}")
    print(f"onnxruntime {ort.__version__}: {'all checks passed' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
