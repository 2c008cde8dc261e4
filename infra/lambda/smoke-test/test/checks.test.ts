/**
 * The pure checks, on real responses the service gave (captured) broken one field at a
 * time: each way a green side can be wrong must fail the check and name the field.
 */
import { describe, expect, it } from "vitest";
import type { OodScores } from "../../../../service/src/contract.js";
import {
  checkInvocation,
  checkPing,
  checkTestTraffic,
  checkTotalLatency,
  reportedModelVersion,
} from "../src/checks.js";
import { summarise } from "../src/verdict.js";
import { budget, capturedPing, capturedResponse, contractV2, image, reply } from "./helpers.js";

const pointSource = image("point-source.fits");
const twoTiles = image("extended-and-streak.png");

function invoke(name: string, edit: (r: ReturnType<typeof capturedResponse>) => void, ms = 12) {
  const response = capturedResponse(name);
  edit(response);
  return checkInvocation(image(name), reply(response, ms), contractV2, budget);
}

describe("checkInvocation on the service's real answers", () => {
  it.each(["point-source.fits", "extended-and-streak.png", "scale.fits"])(
    "passes %s as the service answered it",
    (name) => {
      const check = checkInvocation(image(name), reply(capturedResponse(name)), contractV2, budget);
      expect(check).toMatchObject({ name: `invoke ${name}`, ok: true, ms: 12 });
      expect(check.detail).toMatch(/^200 in 12 ms: \d+ tiles? \(/);
    },
  );
});

describe("checkInvocation: wrong shape or missing fields", () => {
  it("names a missing top-level field", () => {
    const check = invoke("point-source.fits", (r) => {
      delete (r as Partial<typeof r>).tiles;
    });
    expect(check.ok).toBe(false);
    expect(check.detail).toMatch(/^tiles: /);
  });

  it("names a missing field deep in a tile", () => {
    const check = invoke("extended-and-streak.png", (r) => {
      const ood: Partial<OodScores> | undefined = r.tiles[1]?.ood;
      delete ood?.mahalanobis;
    });
    expect(check.ok).toBe(false);
    expect(check.detail).toContain("tiles[1].ood.mahalanobis");
  });

  it("names a field of the wrong type", () => {
    const check = invoke("point-source.fits", (r) => {
      (r.tiles[0] as unknown as { anomaly: string }).anomaly = "no";
    });
    expect(check.detail).toContain("tiles[0].anomaly");
  });

  it("fails a body that is an array, not the response object", () => {
    const check = checkInvocation(pointSource, reply([1, 2, 3]), contractV2, budget);
    expect(check.ok).toBe(false);
    expect(check.detail).toMatch(/^\(root\): .*expected object/);
  });

  it("fails a response from another model version and names both versions", () => {
    const check = invoke("point-source.fits", (r) => {
      r.model.version = "1.0.0";
    });
    expect(check.detail).toContain('model.version: is "1.0.0", expected "2.0.0"');
  });

  it("fails the same version with another manifest (sha256 differs)", () => {
    const check = invoke("point-source.fits", (r) => {
      r.model.manifestSha256 = "0".repeat(64);
    });
    expect(check.detail).toMatch(/model\.manifestSha256: is 0{64}, expected [0-9a-f]{64} \(same version/);
  });

  it("fails when the image is reported with the wrong size", () => {
    const check = invoke("point-source.fits", (r) => {
      r.image.width = 63;
    });
    expect(check.detail).toContain("image: is 63x64 fits, but point-source.fits is 64x64 fits");
  });

  it("fails a tile missing from a two-tile image", () => {
    const check = invoke("extended-and-streak.png", (r) => {
      r.tiles.pop();
    });
    expect(check.detail).toContain("tiles: has 1, expected 2 (128x64 in 64x64 tiles)");
  });

  it("fails a tile at the wrong place", () => {
    const check = invoke("extended-and-streak.png", (r) => {
      (r.tiles[1] as { x: number }).x = 60;
    });
    expect(check.detail).toContain("tiles[1]: is 64x64 at (60, 0), expected 64x64 at (64, 0)");
  });
});

describe("checkInvocation: out-of-range scores", () => {
  it("fails a probability above 1", () => {
    const check = invoke("point-source.fits", (r) => {
      (r.tiles[0] as { probabilities: Record<string, number> }).probabilities.streak = 1.7;
    });
    expect(check.detail).toContain("tiles[0].probabilities.streak: 1.7 is outside [0, 1]");
  });

  it("fails probabilities that do not sum to 1", () => {
    const check = invoke("point-source.fits", (r) => {
      const p = (r.tiles[0] as { probabilities: Record<string, number> }).probabilities;
      p.empty_sky = (p.empty_sky ?? 0) + 0.3;
    });
    expect(check.detail).toMatch(/tiles\[0\]\.probabilities: sum to 1\.3/);
  });

  it("fails an MSP that is not the highest probability", () => {
    const check = invoke("point-source.fits", (r) => {
      (r.tiles[0] as { ood: { msp: number } }).ood.msp = 0.5;
    });
    expect(check.detail).toContain("tiles[0].ood.msp: 0.5 is not the highest probability");
  });

  it("fails a negative Mahalanobis distance", () => {
    const check = invoke("point-source.fits", (r) => {
      (r.tiles[0] as { ood: { mahalanobis: number } }).ood.mahalanobis = -1;
    });
    expect(check.detail).toContain("tiles[0].ood.mahalanobis: -1 is negative");
  });

  it("fails an anomaly verdict the manifest's thresholds do not give", () => {
    const check = invoke("point-source.fits", (r) => {
      const tile = r.tiles[0] as { anomaly: boolean };
      tile.anomaly = !tile.anomaly;
    });
    expect(check.detail).toMatch(/tiles\[0\]\.anomaly: is (true|false), but \d of 3 scores vote/);
  });

  it("fails anomaly votes that disagree with the scores", () => {
    // scale.fits: v2 votes only mahalanobis (its distance is past the threshold).
    const check = invoke("scale.fits", (r) => {
      (r.tiles[0] as { anomalyVotes: string[] }).anomalyVotes = [];
    });
    expect(check.detail).toContain(
      "tiles[0].anomalyVotes: are [], but the model's thresholds give [mahalanobis]",
    );
  });

  it("fails a detection below the detector's confidence threshold", () => {
    const check = invoke("point-source.fits", (r) => {
      (r.tiles[0]?.detections[0] as { confidence: number }).confidence = 0.1;
    });
    expect(check.detail).toContain("tiles[0].detections[0].confidence: 0.1 is outside [0.25, 1]");
  });

  it("fails a detection box outside the image", () => {
    const check = invoke("point-source.fits", (r) => {
      (r.tiles[0]?.detections[0] as { x: number }).x = 60;
    });
    expect(check.detail).toMatch(/tiles\[0\]\.detections\[0\]: box .* is not inside the 64x64 image/);
  });
});

describe("checkInvocation: wrong classes", () => {
  it("fails a class the model does not have", () => {
    const check = invoke("point-source.fits", (r) => {
      (r.tiles[0] as { class: string }).class = "galaxy";
    });
    expect(check.detail).toContain('tiles[0].class: "galaxy" is not one of the model\'s classes');
  });

  it("fails probabilities over another class list", () => {
    const check = invoke("point-source.fits", (r) => {
      const p = (r.tiles[0] as { probabilities: Record<string, number> }).probabilities;
      p.galaxy = p.streak ?? 0;
      delete p.streak;
    });
    expect(check.detail).toContain('tiles[0].probabilities: has no "streak"');
    expect(check.detail).toContain('tiles[0].probabilities: has "galaxy", not a class of the model');
  });

  it("fails a class that is not the most probable", () => {
    const check = invoke("point-source.fits", (r) => {
      (r.tiles[0] as { class: string }).class = "streak";
    });
    expect(check.detail).toContain(
      'tiles[0].class: is "streak", but "point_source" has the highest probability',
    );
  });

  it("fails a healthy-looking answer that misreads a clear known cut-out", () => {
    // A consistent response (class = argmax) that is simply wrong: swap the probabilities.
    const check = invoke("extended-and-streak.png", (r) => {
      const tile = r.tiles[1] as { class: string; probabilities: Record<string, number> };
      const p = tile.probabilities;
      [p.streak, p.empty_sky] = [p.empty_sky ?? 0, p.streak ?? 0];
      tile.class = "empty_sky";
    });
    expect(check.detail).toContain('tiles[1].class: is "empty_sky", but this known cut-out is "streak"');
  });

  it("fails a detector that finds nothing in a clear point source", () => {
    const check = invoke("point-source.fits", (r) => {
      (r.tiles[0] as { detections: unknown[] }).detections = [];
    });
    expect(check.detail).toContain("detections: 0 in all tiles, but point-source.fits holds at least 1");
  });

  it("fails a detection of a class the detector does not have", () => {
    const check = invoke("point-source.fits", (r) => {
      (r.tiles[0]?.detections[0] as { class: string }).class = "star";
    });
    expect(check.detail).toContain(
      'tiles[0].detections[0].class: "star" is not one of the detector\'s classes',
    );
  });

  it("lists at most three problems and counts the rest", () => {
    const check = invoke("extended-and-streak.png", (r) => {
      r.model.version = "9.9.9";
      r.model.name = "other";
      r.image.format = "jpeg";
      r.tiles.pop();
    });
    expect(check.detail.split("; ")).toHaveLength(4);
    expect(check.detail).toMatch(/; and 2 more$/);
  });
});

describe("checkInvocation: slow, non-200, bad JSON, no answer", () => {
  it("fails a correct answer that took longer than the per-request budget", () => {
    const check = checkInvocation(
      pointSource,
      reply(capturedResponse(pointSource.name), 2_345),
      contractV2,
      budget,
    );
    expect(check).toMatchObject({ ok: false, ms: 2_345 });
    expect(check.detail).toBe("answered in 2345 ms, over the per-request budget of 2000 ms");
  });

  it("passes an answer exactly at the budget", () => {
    const check = checkInvocation(
      pointSource,
      reply(capturedResponse(pointSource.name), 2_000),
      contractV2,
      budget,
    );
    expect(check.ok).toBe(true);
  });

  it("names both the content problem and the latency", () => {
    const response = capturedResponse(pointSource.name);
    response.model.version = "1.0.0";
    const check = checkInvocation(pointSource, reply(response, 5_000), contractV2, budget);
    expect(check.detail).toMatch(/^model\.version: .*; answered in 5000 ms, over the per-request budget/);
  });

  it("fails a non-200 and quotes the body", () => {
    const check = checkInvocation(
      pointSource,
      reply('{"error":"the models are still loading; retry shortly"}', 3, 503),
      contractV2,
      budget,
    );
    expect(check.detail).toBe(
      'answered HTTP 503, expected 200: {"error":"the models are still loading; retry shortly"}',
    );
  });

  it("fails a 200 whose body is not JSON", () => {
    const check = checkInvocation(
      pointSource,
      { kind: "reply", status: 200, contentType: "text/html", body: "<html>502 Bad Gateway</html>", ms: 4 },
      contractV2,
      budget,
    );
    expect(check.ok).toBe(false);
    expect(check.detail).toMatch(
      /^the body is not JSON \(.*; content-type "text\/html"\): <html>502 Bad Gateway<\/html>$/,
    );
  });

  it("fails an empty body", () => {
    const check = checkInvocation(pointSource, reply("", 4), contractV2, budget);
    expect(check.detail).toMatch(/the body is not JSON .*: \(empty body\)$/);
  });

  it("fails when there was no answer, with the reason", () => {
    const check = checkInvocation(
      pointSource,
      { kind: "error", message: "fetch failed: connect ECONNREFUSED 127.0.0.1:9", ms: 1.4 },
      contractV2,
      budget,
    );
    expect(check).toEqual({
      name: "invoke point-source.fits",
      ok: false,
      detail: "no answer: fetch failed: connect ECONNREFUSED 127.0.0.1:9",
      ms: 1,
    });
  });

  it("fails a request never sent", () => {
    const check = checkInvocation(
      twoTiles,
      { kind: "not-sent", reason: "the total latency budget of 10000 ms was spent" },
      contractV2,
      budget,
    );
    expect(check).toMatchObject({
      ok: false,
      ms: 0,
      detail: "not sent: the total latency budget of 10000 ms was spent",
    });
  });
});

describe("checkPing", () => {
  it("passes the service's real /ping", () => {
    const check = checkPing(reply(capturedPing(), 3), contractV2, budget);
    expect(check).toMatchObject({ name: "ping", ok: true });
    expect(check.detail).toMatch(/^200 in 3 ms: astrolens 2\.0\.0 \(manifest [0-9a-f]{12}…\)$/);
  });

  it("fails a service still loading (503)", () => {
    const check = checkPing(reply({ status: "loading", model: null }, 3, 503), contractV2, budget);
    expect(check.detail).toMatch(/^answered HTTP 503/);
  });

  it("fails a 200 with no model loaded", () => {
    const check = checkPing(reply({ status: "ok", model: null }), contractV2, budget);
    expect(check.detail).toContain("model: is null");
  });

  it("fails a ping body of the wrong shape and names the field", () => {
    const check = checkPing(reply({ status: "ok", model: { name: "astrolens" } }), contractV2, budget);
    expect(check.detail).toContain("model.version");
  });

  it("fails the previous model", () => {
    const ping = capturedPing();
    ping.model.version = "1.0.0";
    expect(checkPing(reply(ping), contractV2, budget).detail).toContain('model.version: is "1.0.0"');
  });

  it("fails a slow ping", () => {
    expect(checkPing(reply(capturedPing(), 2_001), contractV2, budget).detail).toBe(
      "answered in 2001 ms, over the per-request budget of 2000 ms",
    );
  });
});

describe("checkTotalLatency, checkTestTraffic, reportedModelVersion, summarise", () => {
  it("judges the total against its budget", () => {
    expect(checkTotalLatency(9_999.6, 4, budget)).toMatchObject({ ok: true, ms: 10_000 });
    expect(checkTotalLatency(10_001, 4, budget)).toMatchObject({
      ok: false,
      detail: "10001 ms for 4 requests, over the total budget of 10000 ms",
    });
  });

  it("checks the test-traffic weights only when ECS reports them", () => {
    expect(checkTestTraffic({})).toBeUndefined();
    expect(checkTestTraffic({ targetServiceRevisionArn: "green", testTrafficWeights: {} })).toBeUndefined();
    expect(
      checkTestTraffic({ targetServiceRevisionArn: "green", testTrafficWeights: { green: 100, blue: 0 } }),
    ).toMatchObject({
      ok: true,
    });
    expect(
      checkTestTraffic({ targetServiceRevisionArn: "green", testTrafficWeights: { green: 0, blue: 100 } }),
    ).toMatchObject({
      name: "test traffic",
      ok: false,
      detail: expect.stringContaining("sends 0% (not 100%)"),
    });
  });

  it("reads the model version a reply names, if any", () => {
    expect(reportedModelVersion(reply(capturedPing()))).toBe("2.0.0");
    expect(reportedModelVersion(reply("not json"))).toBeUndefined();
    expect(reportedModelVersion(reply("null"))).toBeUndefined();
    expect(reportedModelVersion({ kind: "error", message: "x", ms: 1 })).toBeUndefined();
  });

  it("summarises in one sentence naming the first failure", () => {
    const verdict = summarise(
      "http://green/",
      [
        { name: "ping", ok: true, detail: "200 in 3 ms", ms: 3 },
        { name: "invoke a.fits", ok: false, detail: "tiles[0].class: wrong", ms: 9 },
        { name: "invoke b.png", ok: false, detail: "answered HTTP 500", ms: 9 },
      ],
      "2.0.0",
      21,
    );
    expect(verdict).toMatchObject({ ok: false, target: "http://green/", modelVersion: "2.0.0" });
    expect(verdict.summary).toBe(
      'smoke test failed at "invoke a.fits": tiles[0].class: wrong (2 of 3 checks failed)',
    );
    expect(
      summarise("http://green/", [{ name: "ping", ok: true, detail: "", ms: 1 }], "2.0.0", 1.2).summary,
    ).toBe("smoke test passed: 1 check against http://green/ (model 2.0.0) in 1 ms");
  });
});
