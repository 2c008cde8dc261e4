import { describe, expect, it } from "vitest";
import { ConfigurationError } from "../../src/errors.js";
import {
  type ClassificationItem,
  computeMetrics,
  type DetectionItem,
  detectionMetrics,
  expectedCalibrationError,
  iou,
  type ModelPredictions,
  type OodItem,
} from "../../src/gate/metrics.js";

function item(
  label: number,
  predicted: number,
  probabilities: number[],
  ood = { msp: 0.9, energy: 5, mahalanobis: 1 },
) {
  return { label, predicted, probabilities, ood, anomaly: false } satisfies ClassificationItem;
}

const CLASSES = ["galaxy", "star", "quasar"];

describe("computeMetrics: classification", () => {
  // true:      0 0 0 0 1 1 1 2 2 2
  // predicted: 0 0 0 1 1 1 0 2 2 1
  const pairs: [number, number][] = [
    [0, 0],
    [0, 0],
    [0, 0],
    [0, 1],
    [1, 1],
    [1, 1],
    [1, 0],
    [2, 2],
    [2, 2],
    [2, 1],
  ];
  const predictions: ModelPredictions = {
    classes: CLASSES,
    classification: pairs.map(([label, predicted]) =>
      item(
        label,
        predicted,
        [0, 1, 2].map((c) => (c === predicted ? 0.8 : 0.1)),
      ),
    ),
    ood: [],
    detection: [],
  };

  it("computes accuracy, the confusion matrix and per-class scores", () => {
    const m = computeMetrics(predictions);
    expect(m.items).toBe(10);
    expect(m.accuracy).toBeCloseTo(0.7, 12);
    expect(m.confusion).toEqual([
      [3, 1, 0],
      [1, 2, 0],
      [0, 1, 2],
    ]);
    const [galaxy, star, quasar] = m.classes;
    // galaxy: tp 3, predicted 4, support 4 -> P 0.75, R 0.75
    expect(galaxy).toMatchObject({ name: "galaxy", precision: 0.75, recall: 0.75, support: 4 });
    // star: tp 2, predicted 4, support 3 -> P 0.5, R 2/3, F1 = 2·0.5·(2/3)/(0.5+2/3) = 4/7
    expect(star?.precision).toBeCloseTo(0.5, 12);
    expect(star?.recall).toBeCloseTo(2 / 3, 12);
    expect(star?.f1).toBeCloseTo(4 / 7, 12);
    // quasar: tp 2, predicted 2, support 3 -> P 1, R 2/3, F1 0.8
    expect(quasar?.f1).toBeCloseTo(0.8, 12);
    expect(m.macroF1).toBeCloseTo((0.75 + 4 / 7 + 0.8) / 3, 12);
    expect(m.ood).toBeUndefined();
    expect(m.detection).toBeUndefined();
  });

  it("leaves a class absent from labels and predictions out of macro-F1", () => {
    const m = computeMetrics({
      ...predictions,
      classes: [...CLASSES, "comet"],
      classification: predictions.classification.map((i) => ({
        ...i,
        probabilities: [...i.probabilities, 0],
      })),
    });
    expect(m.macroF1).toBeCloseTo((0.75 + 4 / 7 + 0.8) / 3, 12);
    expect(m.classes[3]).toMatchObject({ name: "comet", support: 0, precision: 0, f1: 0 });
    expect(m.classes[3]?.recall).toBeNaN();
  });

  it("rejects empty and inconsistent inputs with clear errors", () => {
    const bad = (p: Partial<ModelPredictions>) => () => computeMetrics({ ...predictions, ...p });
    expect(bad({ classification: [] })).toThrow(ConfigurationError);
    expect(bad({ classification: [] })).toThrow(/evaluation set is empty/);
    expect(bad({ classes: [] })).toThrow(/declares no classes/);
    expect(bad({ classification: [item(3, 0, [1, 0, 0])] })).toThrow(
      /item 0: label 3 names no class \(the model has 3: galaxy, star, quasar\)/,
    );
    expect(bad({ classification: [item(0, 0, [1, 0])] })).toThrow(/2 probabilities for 3 classes/);
    expect(bad({ classification: [item(0, 7, [1, 0, 0])] })).toThrow(/predicted class 7/);
  });
});

describe("expectedCalibrationError", () => {
  it("matches a hand-computed case", () => {
    // Bins of width 1/15. Two items at confidence 0.9 (bin 13), one right, one wrong:
    // |0.5 − 0.9| · 2/4 = 0.2. One at 0.65 (bin 9), right: |1 − 0.65| · 1/4 = 0.0875.
    // One at 0.35 (bin 5), right: |1 − 0.35| · 1/4 = 0.1625. ECE = 0.45.
    const { ece, bins } = expectedCalibrationError([
      item(0, 0, [0.9, 0.05, 0.05]),
      item(1, 0, [0.9, 0.05, 0.05]),
      item(1, 1, [0.3, 0.65, 0.05]),
      item(2, 2, [0.33, 0.32, 0.35]),
    ]);
    expect(ece).toBeCloseTo(0.45, 12);
    expect(bins).toHaveLength(15);
    expect(bins[13]).toMatchObject({ count: 2, accuracy: 0.5 });
    expect(bins[13]?.confidence).toBeCloseTo(0.9, 12);
    expect(bins[9]?.count).toBe(1);
    expect(bins[5]?.count).toBe(1);
  });

  it("is 0 for a perfectly calibrated bin and puts confidence 1 in the last bin", () => {
    const { ece, bins } = expectedCalibrationError([item(0, 0, [1, 0, 0]), item(1, 1, [0, 1, 0])]);
    expect(ece).toBe(0);
    expect(bins[14]?.count).toBe(2);
  });
});

describe("computeMetrics: OOD", () => {
  const inDist = Array.from({ length: 20 }, (_, i) =>
    item(0, 0, [0.9, 0.05, 0.05], { msp: 0.8 + i * 0.01, energy: 10 + i, mahalanobis: 1 + i * 0.1 }),
  ).map((it, i) => ({ ...it, anomaly: i === 0 }));
  const ood: OodItem[] = [
    { ood: { msp: 0.3, energy: 1, mahalanobis: 9 }, anomaly: true },
    { ood: { msp: 0.4, energy: 2, mahalanobis: 8 }, anomaly: true },
    { ood: { msp: 0.5, energy: 3, mahalanobis: 7 }, anomaly: true },
    { ood: { msp: 0.999, energy: 40, mahalanobis: 0.5 }, anomaly: false },
  ];

  it("orients each score (MSP and energy higher = in, Mahalanobis lower = in)", () => {
    const m = computeMetrics({ classes: CLASSES, classification: inDist, ood, detection: [] });
    // Three OOD items below every in-distribution item, one above every one: AUROC 0.75.
    expect(m.ood?.msp.auroc).toBeCloseTo(0.75, 12);
    expect(m.ood?.energy.auroc).toBeCloseTo(0.75, 12);
    expect(m.ood?.mahalanobis.auroc).toBeCloseTo(0.75, 12);
    // Keeping 19 of 20 in-distribution items also accepts the outlier: FPR 1/4.
    expect(m.ood?.msp.fprAt95Tpr).toBe(0.25);
    expect(m.ood?.mahalanobis.fprAt95Tpr).toBe(0.25);
    // The flag: 19/20 in-distribution accepted, 1/4 OOD accepted.
    expect(m.ood?.ensemble.tpr).toBeCloseTo(0.95, 12);
    expect(m.ood?.ensemble.fpr).toBe(0.25);
    // Binary AUROC = (TPR + 1 − FPR) / 2.
    expect(m.ood?.ensemble.auroc).toBeCloseTo((0.95 + 0.75) / 2, 12);
    expect(m.ood).toMatchObject({ inDistribution: 20, outOfDistribution: 4 });
  });
});

describe("detection mAP@0.5", () => {
  const box = (x: number, y: number): [number, number, number, number] => [x, y, 10, 10];

  it("computes IoU of x, y, w, h boxes", () => {
    expect(iou(box(0, 0), box(0, 0))).toBe(1);
    expect(iou(box(0, 0), box(5, 0))).toBeCloseTo(50 / 150, 12);
    expect(iou(box(0, 0), box(20, 20))).toBe(0);
  });

  it("is 1 when every box is found and nothing else", () => {
    const items: DetectionItem[] = [
      {
        truth: [box(0, 0), box(50, 50)],
        detections: [
          { box: box(1, 1), confidence: 0.9 },
          { box: box(50, 50), confidence: 0.8 },
        ],
      },
      { truth: [box(10, 10)], detections: [{ box: box(10, 10), confidence: 0.7 }] },
    ];
    expect(detectionMetrics(items)).toEqual({ images: 2, truths: 3, detections: 3, map50: 1 });
  });

  it("is 0.5 when half the boxes are missed", () => {
    const items: DetectionItem[] = [
      { truth: [box(0, 0), box(50, 50)], detections: [{ box: box(0, 0), confidence: 0.9 }] },
      { truth: [box(0, 0), box(50, 50)], detections: [{ box: box(50, 50), confidence: 0.8 }] },
    ];
    expect(detectionMetrics(items).map50).toBeCloseTo(0.5, 12);
  });

  it("charges a false positive by where it ranks", () => {
    const truth = [box(0, 0), box(50, 50)];
    const miss = { box: box(100, 100), confidence: 0 };
    // FP first: precision 0, 1/2, 2/3 at recall 0, 1/2, 1; envelope 2/3 everywhere -> AP 2/3.
    const first = detectionMetrics([
      {
        truth,
        detections: [
          { ...miss, confidence: 0.9 },
          { box: box(0, 0), confidence: 0.8 },
          { box: box(50, 50), confidence: 0.7 },
        ],
      },
    ]);
    expect(first.map50).toBeCloseTo(2 / 3, 12);
    // FP last: full recall already reached at precision 1 -> AP 1.
    const last = detectionMetrics([
      {
        truth,
        detections: [
          { box: box(0, 0), confidence: 0.9 },
          { box: box(50, 50), confidence: 0.8 },
          { ...miss, confidence: 0.1 },
        ],
      },
    ]);
    expect(last.map50).toBe(1);
  });

  it("counts a duplicate detection of a matched box, or an overlap below 0.5, as a false positive", () => {
    const items: DetectionItem[] = [
      {
        truth: [box(0, 0), box(50, 50)],
        detections: [
          { box: box(0, 0), confidence: 0.9 },
          { box: box(1, 0), confidence: 0.8 }, // duplicate of the first truth
          { box: box(55, 50), confidence: 0.7 }, // IoU 1/3 with the second truth
        ],
      },
    ];
    // TP, FP, FP: recall reaches 1/2 at precision 1 and never more -> AP 0.5.
    expect(detectionMetrics(items).map50).toBeCloseTo(0.5, 12);
  });

  it("is reported by computeMetrics only when detection items exist, and needs truth boxes", () => {
    const base: ModelPredictions = {
      classes: CLASSES,
      classification: [item(0, 0, [1, 0, 0])],
      ood: [],
      detection: [],
    };
    expect(computeMetrics(base).detection).toBeUndefined();
    expect(
      computeMetrics({
        ...base,
        detection: [{ truth: [box(0, 0)], detections: [{ box: box(0, 0), confidence: 1 }] }],
      }).detection?.map50,
    ).toBe(1);
    expect(() => computeMetrics({ ...base, detection: [{ truth: [], detections: [] }] })).toThrow(
      /no truth boxes/,
    );
  });
});
