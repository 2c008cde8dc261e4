import { CloudWatchClient, DescribeAlarmsCommand } from "@aws-sdk/client-cloudwatch";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import type { ObservedAlarm } from "../../src/deploy/plan.js";
import { AlarmWatch, describeAlarms } from "../../src/deploy/watch.js";
import { ConfigurationError } from "../../src/errors.js";

const cwMock = mockClient(CloudWatchClient);
const cloudwatch = new CloudWatchClient({ region: "us-east-1" });

beforeEach(() => cwMock.reset());

const alarm = (
  name: string,
  state: ObservedAlarm["state"],
  updatedAt: string,
  reason = "",
): ObservedAlarm => ({
  name,
  state,
  reason,
  updatedAt,
});

describe("describeAlarms", () => {
  it("reads metric and composite alarms by name, in the order asked", async () => {
    cwMock.on(DescribeAlarmsCommand).resolves({
      MetricAlarms: [
        {
          AlarmName: "b",
          StateValue: "ALARM",
          StateReason: "Threshold Crossed: 1 datapoint [9.0] > 5.0",
          StateUpdatedTimestamp: new Date("2026-11-26T10:00:00Z"),
        },
      ],
      CompositeAlarms: [
        { AlarmName: "a", StateValue: "OK", StateUpdatedTimestamp: new Date("2026-11-26T09:00:00Z") },
      ],
    });
    expect(await describeAlarms(cloudwatch, ["a", "b"])).toEqual([
      alarm("a", "OK", "2026-11-26T09:00:00.000Z"),
      alarm("b", "ALARM", "2026-11-26T10:00:00.000Z", "Threshold Crossed: 1 datapoint [9.0] > 5.0"),
    ]);
    expect(cwMock.commandCalls(DescribeAlarmsCommand)[0]?.args[0].input).toEqual({
      AlarmNames: ["a", "b"],
      AlarmTypes: ["MetricAlarm", "CompositeAlarm"],
    });
  });

  it("names unknown alarms in a ConfigurationError", async () => {
    cwMock.on(DescribeAlarmsCommand).resolves({ MetricAlarms: [{ AlarmName: "a", StateValue: "OK" }] });
    const err = await describeAlarms(cloudwatch, ["a", "typo-5xx"]).catch((e) => e);
    expect(err).toBeInstanceOf(ConfigurationError);
    expect(err.message).toContain('input "alarms": CloudWatch has no alarm named typo-5xx');
  });

  it("follows NextToken", async () => {
    cwMock
      .on(DescribeAlarmsCommand)
      .resolvesOnce({ MetricAlarms: [{ AlarmName: "a", StateValue: "OK" }], NextToken: "t" })
      .resolves({ MetricAlarms: [{ AlarmName: "b", StateValue: "OK" }] });
    expect((await describeAlarms(cloudwatch, ["a", "b"])).map((a) => a.name)).toEqual(["a", "b"]);
    expect(cwMock.commandCalls(DescribeAlarmsCommand)[1]?.args[0].input.NextToken).toBe("t");
  });
});

describe("AlarmWatch", () => {
  const t0 = "2026-11-26T09:00:00.000Z";
  it("keeps each state change with its reason, and reports what fires", () => {
    const watch = new AlarmWatch([alarm("a", "OK", t0), alarm("b", "OK", t0)], []);
    expect(watch.update([alarm("a", "OK", t0), alarm("b", "OK", t0)], "s1")).toEqual([]);
    const changes = watch.update(
      [alarm("a", "ALARM", "2026-11-26T10:00:00.000Z", "Threshold Crossed"), alarm("b", "OK", t0)],
      "s2",
    );
    expect(changes).toEqual([
      {
        name: "a",
        from: "OK",
        to: "ALARM",
        reason: "Threshold Crossed",
        at: "2026-11-26T10:00:00.000Z",
        seenAt: "s2",
      },
    ]);
    expect(watch.firing().map((a) => a.name)).toEqual(["a"]);
    expect(watch.events).toHaveLength(1);
  });

  it("catches ALARM -> OK -> ALARM between two readings by the timestamp", () => {
    const watch = new AlarmWatch([alarm("a", "ALARM", t0)], ["a"]);
    expect(watch.firing()).toEqual([]);
    watch.update([alarm("a", "ALARM", "2026-11-26T10:05:00.000Z", "again")], "s");
    expect(watch.firing().map((a) => a.name)).toEqual(["a"]);
  });

  it("excuses an allowed alarm in ALARM at the start until it leaves ALARM and comes back", () => {
    const watch = new AlarmWatch([alarm("a", "ALARM", t0)], ["a"]);
    watch.update([alarm("a", "ALARM", t0)], "s1");
    expect(watch.firing()).toEqual([]);
    watch.update([alarm("a", "OK", "2026-11-26T10:00:00.000Z")], "s2");
    watch.update([alarm("a", "ALARM", "2026-11-26T10:01:00.000Z", "back")], "s3");
    expect(watch.firing().map((a) => a.reason)).toEqual(["back"]);
  });

  it("does not excuse an alarm that was not allowed", () => {
    expect(new AlarmWatch([alarm("a", "ALARM", t0)], []).firing()).toHaveLength(1);
  });

  it("keeps each change once when a resumed run replays them", () => {
    const events = [
      {
        name: "a",
        from: "OK" as const,
        to: "ALARM" as const,
        reason: "r",
        at: "2026-11-26T10:00:00.000Z",
        seenAt: "x",
      },
    ];
    const watch = new AlarmWatch([alarm("a", "OK", t0)], [], events);
    watch.update([alarm("a", "ALARM", "2026-11-26T10:00:00.000Z", "r")], "y");
    expect(watch.events).toHaveLength(1);
  });
});
