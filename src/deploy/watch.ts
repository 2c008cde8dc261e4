import {
  type CloudWatchClient,
  DescribeAlarmsCommand,
  type DescribeAlarmsCommandOutput,
} from "@aws-sdk/client-cloudwatch";
import { ConfigurationError, withContext } from "../errors.js";
import type { AlarmStateValue, ObservedAlarm } from "./plan.js";

/**
 * The release's alarms: read by name, and followed through the release so that every
 * state change is kept with CloudWatch's StateReason (the ledger's "alarms seen").
 */

/** CloudWatch answers at most 100 names per DescribeAlarms call. */
const NAMES_PER_CALL = 100;

/**
 * The state of each named alarm, metric or composite. A name CloudWatch does not know
 * is a ConfigurationError (a typo would otherwise silently watch nothing), raised before
 * the release changes anything.
 */
export async function describeAlarms(
  cloudwatch: CloudWatchClient,
  names: string[],
): Promise<ObservedAlarm[]> {
  const found = new Map<string, ObservedAlarm>();
  for (let i = 0; i < names.length; i += NAMES_PER_CALL) {
    const batch = names.slice(i, i + NAMES_PER_CALL);
    let nextToken: string | undefined;
    do {
      let page: DescribeAlarmsCommandOutput;
      try {
        page = await cloudwatch.send(
          new DescribeAlarmsCommand({
            AlarmNames: batch,
            AlarmTypes: ["MetricAlarm", "CompositeAlarm"],
            ...(nextToken ? { NextToken: nextToken } : {}),
          }),
        );
      } catch (err) {
        throw withContext("reading the release alarms from CloudWatch", err);
      }
      for (const alarm of [...(page.MetricAlarms ?? []), ...(page.CompositeAlarms ?? [])]) {
        if (alarm.AlarmName) found.set(alarm.AlarmName, toObserved(alarm));
      }
      nextToken = page.NextToken;
    } while (nextToken);
  }
  const missing = names.filter((name) => !found.has(name));
  if (missing.length > 0) {
    throw new ConfigurationError(
      `input "alarms": CloudWatch has no alarm named ${missing.join(", ")}; check the names (the environment's alarms are created by its stack: ${names.filter((n) => found.has(n)).join(", ") || "none found"}), or deploy the stack first`,
    );
  }
  return names.map((name) => found.get(name) as ObservedAlarm);
}

interface AlarmFields {
  AlarmName?: string;
  StateValue?: string;
  StateReason?: string;
  StateUpdatedTimestamp?: Date;
}

function toObserved(alarm: AlarmFields): ObservedAlarm {
  return {
    name: alarm.AlarmName ?? "",
    state: (alarm.StateValue ?? "INSUFFICIENT_DATA") as AlarmStateValue,
    reason: alarm.StateReason ?? "",
    updatedAt: (alarm.StateUpdatedTimestamp ?? new Date(0)).toISOString(),
  };
}

/** One state change, as the ledger keeps it. */
export interface AlarmEvent {
  name: string;
  from: AlarmStateValue;
  to: AlarmStateValue;
  reason: string;
  /** When CloudWatch changed the state (StateUpdatedTimestamp). */
  at: string;
  /** When the release saw it: the start of the rollback clock. */
  seenAt: string;
}

/**
 * Follows the alarms from the release's start. An alarm that was in ALARM at the start
 * (and allowed) does not count until it has left ALARM and come back: it was there
 * before this version served anything.
 */
export class AlarmWatch {
  private readonly last = new Map<string, ObservedAlarm>();
  private readonly excused = new Set<string>();
  readonly events: AlarmEvent[];

  constructor(initial: ObservedAlarm[], allowedInAlarm: string[], events: AlarmEvent[] = []) {
    for (const alarm of initial) this.last.set(alarm.name, alarm);
    for (const name of allowedInAlarm) {
      if (this.last.get(name)?.state === "ALARM") this.excused.add(name);
    }
    this.events = events;
  }

  /** Takes a new reading; returns the changes since the last one (also appended to `events`). */
  update(states: ObservedAlarm[], seenAt: string): AlarmEvent[] {
    const changes: AlarmEvent[] = [];
    for (const alarm of states) {
      const before = this.last.get(alarm.name);
      // A change between two readings can be missed by state alone (ALARM -> OK -> ALARM);
      // the timestamp catches it.
      if (!before || before.state !== alarm.state || before.updatedAt !== alarm.updatedAt) {
        if (before) {
          changes.push({
            name: alarm.name,
            from: before.state,
            to: alarm.state,
            reason: alarm.reason,
            at: alarm.updatedAt,
            seenAt,
          });
        }
        if (alarm.state !== "ALARM") this.excused.delete(alarm.name);
        else if (before && before.updatedAt !== alarm.updatedAt) this.excused.delete(alarm.name);
      }
      this.last.set(alarm.name, alarm);
    }
    // A resumed release replays the changes since the start; keep each change once.
    const fresh = changes.filter(
      (c) => !this.events.some((e) => e.name === c.name && e.to === c.to && e.at === c.at),
    );
    this.events.push(...fresh);
    return fresh;
  }

  /** Alarms in ALARM that count against this release. */
  firing(): ObservedAlarm[] {
    return [...this.last.values()].filter((a) => a.state === "ALARM" && !this.excused.has(a.name));
  }
}
