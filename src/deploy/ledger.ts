import type { DeploymentConfiguration } from "@aws-sdk/client-ecs";
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import type { SmokeContract } from "../../infra/lambda/smoke-test/src/types.js";
import { awsErrorName } from "../aws/clients.js";
import { LEDGER_KEY, LEDGER_LOCK_ID } from "../environment.js";
import { ConfigurationError, withContext } from "../errors.js";
import type { ModelIdentity, ObservedAlarm, Provenance, SageMakerStrategy } from "./plan.js";
import type { SmokeRecord } from "./smoke.js";
import type { AlarmEvent } from "./watch.js";

/**
 * The release ledger: one DynamoDB item per release (the job summary renders it, a
 * re-run resumes from it), and one lock item per environment whose conditional write
 * admits one release at a time (table and key from environment.ts).
 */

/**
 * in-progress until the end; then where the environment is: succeeded (both targets on
 * the new version), rolled-back (both on the previous one — also when the release
 * stopped before changing anything), or failed (a rollback itself failed: a person must
 * look; the reason says which target and why).
 */
export type ReleaseOutcome = "in-progress" | "succeeded" | "rolled-back" | "failed";

/**
 * Where a release is; each is written before the step it names begins, so a re-run
 * knows what may already have happened.
 */
export type ReleaseStage =
  | "started"
  | "resources-ready"
  | "ecs-deploying"
  | "sagemaker-deploying"
  | "baking"
  | "rolling-back"
  | "done";

/** What started a rollback: a target's failure, its smoke test, an alarm, an error, or a person. */
export type RollbackTrigger =
  | "ecs"
  | "ecs-smoke"
  | "sagemaker"
  | "sagemaker-smoke"
  | "alarm"
  | "error"
  | "operator";

export interface ReleaseRecord {
  environment: string;
  releaseId: string;
  /** A release of a new version, or an operator's rollback to a previous one. */
  kind: "release" | "rollback";
  imageUri: string;
  digest: string;
  model: ModelIdentity;
  provenance: Provenance;
  /** The inputs, as resolved, so a later run resumes with exactly these. */
  request: {
    strategy: SageMakerStrategy;
    bakeMinutes: number;
    alarmNames: string[];
    allowAlarms: string[];
    smokeFunction: string;
    smokeFunctionArn: string;
    hookRoleArn?: string;
    testUrl?: string;
    stepWaitSeconds: number;
    containerEnvironment: Record<string, string>;
    contract?: SmokeContract;
  };
  stage: ReleaseStage;
  outcome: ReleaseOutcome;
  /** One sentence: what happened and why. */
  reason: string;
  startedAt: string;
  updatedAt: string;
  finishedAt?: string;
  ecs: {
    previousTaskDefinitionArn: string;
    /**
     * The service's deployment configuration before the release (the stack's, or the
     * previous release's): a rollback puts it back, smoke hook, role, timeout and bake
     * included, so the next release finds the service as the stack left it.
     */
    previousDeploymentConfiguration?: DeploymentConfiguration;
    /** The configuration this release deployed with (an operator's rollback to this release restores it). */
    deploymentConfiguration?: DeploymentConfiguration;
    taskDefinitionArn?: string;
    reused?: boolean;
    deploymentArn?: string;
    requestedAt?: string;
    status?: string;
    rollback?: {
      action: string;
      deploymentArn?: string;
      requestedAt?: string;
      state?: string;
      detail?: string;
      /** The previous deployment configuration is back on the service. */
      configurationRestored?: boolean;
    };
  };
  sagemaker: {
    previousEndpointConfigName: string;
    endpointConfigName: string;
    modelName: string;
    requestedAt?: string;
    status?: string;
    rollback?: { result?: string; requestedAt?: string; state?: string; detail?: string };
  };
  alarms: {
    watched: string[];
    /** The alarms ECS and SageMaker roll back on. */
    native: string[];
    allowedInAlarm: string[];
    atStart: ObservedAlarm[];
    events: AlarmEvent[];
  };
  smoke: { ecs?: SmokeRecord; sagemaker?: SmokeRecord };
  bake?: { startedAt: string; endsAt: string; detachedAt?: string };
  rollback?: {
    trigger: RollbackTrigger;
    /** Why, as the end of "… because <cause>". */
    cause: string;
    /** When the failure was seen. */
    detectedAt: string;
    /** When each target's rollback was requested (or found already under way). */
    requests: { ecs?: string; sagemaker?: string };
    /** The alarms that fired, for an alarm trigger. */
    alarms?: string[];
    /**
     * Detection to the rollback request for the other target (for an alarm: for each
     * target the coordinator must ask), in ms: what bench:rollback reports. SageMaker
     * in the middle of an update cannot be asked (UpdateEndpoint is refused); when the
     * alarm is one of its auto-rollback alarms it turns back by itself and is not counted.
     */
    latencyMs?: number;
    /** SageMaker refused the request while its update ran; it was asked again when it stopped. */
    deferred?: boolean;
  };
  /** Milliseconds spent in each stage. */
  timings: Record<string, number>;
}

export interface LockItem {
  environment: string;
  releaseId: typeof LEDGER_LOCK_ID;
  /** The release holding the lock. */
  holder: string;
  digest: string;
  startedAt: string;
  /** Renewed on every poll; a lock not renewed for a while belongs to a runner that died. */
  heartbeatAt: string;
  /** A token for the process driving the release, so a runner that lost the lock finds out. */
  owner: string;
  /** The holder returned on purpose (at the bake) and expects a later `resume`. */
  detached: boolean;
  /**
   * The process driving the release. A run on the same machine can tell at once that a
   * killed holder is gone (its pid no longer exists) instead of waiting for the
   * heartbeat to go stale; elsewhere (another runner) only the heartbeat says so.
   */
  runner?: LockRunner;
}

export interface LockRunner {
  host: string;
  pid: number;
}

/** The lock is held by someone else: not an error of ours, but the caller must stop. */
export class LockLostError extends Error {
  override name = "LockLostError";
}

/** What the coordinator needs of the ledger; DynamoDB in production, a map in tests. */
export interface LedgerStore {
  /** Takes the environment's lock, or reports who has it. */
  acquireLock(lock: LockItem): Promise<{ acquired: true } | { acquired: false; holder: LockItem }>;
  /** Takes over a lock whose owner is `seenOwner` (a dead or detached runner). */
  takeOverLock(
    environment: string,
    seenOwner: string,
    owner: string,
    now: string,
    runner?: LockRunner,
  ): Promise<boolean>;
  /** Renews the lock; throws LockLostError if another runner took it over. */
  heartbeat(environment: string, owner: string, now: string, detached?: boolean): Promise<void>;
  releaseLock(environment: string, owner: string): Promise<void>;
  readLock(environment: string): Promise<LockItem | undefined>;
  putRecord(record: ReleaseRecord): Promise<void>;
  getRecord(environment: string, releaseId: string): Promise<ReleaseRecord | undefined>;
  /** The environment's releases, newest first. */
  listRecords(environment: string, limit: number): Promise<ReleaseRecord[]>;
}

/**
 * A release id: the UTC start time (sortable, so the table's sort key orders an
 * environment's releases) and 12 hex digits of the digest (readable: which image).
 * The lock makes two releases of one environment in the same second impossible.
 */
export function newReleaseId(nowMs: number, digest: string): string {
  const time = new Date(nowMs)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return `${time}-${digest.replace(/^sha256:/, "").slice(0, 12)}`;
}

/**
 * Whether a lock's holder is still driving its release: not detached, heartbeat fresh,
 * and its process not known to be gone (`runnerGone`, see LockItem.runner).
 */
export function lockIsLive(lock: LockItem, nowMs: number, staleAfterMs: number, runnerGone = false): boolean {
  return !runnerGone && !lock.detached && nowMs - Date.parse(lock.heartbeatAt) < staleAfterMs;
}

/** The ledger in the environment's DynamoDB table, through the document client. */
export function createDynamoLedger(doc: DynamoDBDocumentClient, table: string): LedgerStore {
  const pk = LEDGER_KEY.partition;
  const sk = LEDGER_KEY.sort;
  const lockKey = (environment: string) => ({ [pk]: environment, [sk]: LEDGER_LOCK_ID });
  const names = { "#owner": "owner", "#heartbeat": "heartbeatAt", "#detached": "detached" };

  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (awsErrorName(err) === "ResourceNotFoundException") {
        throw new ConfigurationError(
          `the release ledger table ${table} does not exist: deploy the environment's stack, which creates it`,
        );
      }
      throw withContext(`${what} in ledger table ${table}`, err);
    }
  };
  const conditionFailed = (err: unknown) =>
    awsErrorName(err) === "ConditionalCheckFailedException" ||
    awsErrorName((err as { cause?: unknown })?.cause) === "ConditionalCheckFailedException";

  const readLock = (environment: string) =>
    call("reading the lock", async () => {
      const got = await doc.send(
        new GetCommand({ TableName: table, Key: lockKey(environment), ConsistentRead: true }),
      );
      return got.Item as LockItem | undefined;
    });

  return {
    async acquireLock(lock) {
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          await call("taking the lock", () =>
            doc.send(
              new PutCommand({
                TableName: table,
                Item: lock,
                ConditionExpression: "attribute_not_exists(#sk)",
                ExpressionAttributeNames: { "#sk": sk },
              }),
            ),
          );
          return { acquired: true };
        } catch (err) {
          if (!conditionFailed(err)) throw err;
        }
        const holder = await readLock(lock.environment);
        if (holder) return { acquired: false, holder };
        // Released between our write and our read: try once more.
      }
      throw new Error(`the lock of ${lock.environment} changed hands twice while taking it; try again`);
    },

    async takeOverLock(environment, seenOwner, owner, now, runner) {
      try {
        await call("taking over the lock", () =>
          doc.send(
            new UpdateCommand({
              TableName: table,
              Key: lockKey(environment),
              UpdateExpression: `SET #owner = :owner, #heartbeat = :now, #detached = :false${runner ? ", #runner = :runner" : ""}`,
              ConditionExpression: "#owner = :seen",
              ExpressionAttributeNames: { ...names, ...(runner ? { "#runner": "runner" } : {}) },
              ExpressionAttributeValues: {
                ":owner": owner,
                ":now": now,
                ":false": false,
                ":seen": seenOwner,
                ...(runner ? { ":runner": runner } : {}),
              },
            }),
          ),
        );
        return true;
      } catch (err) {
        if (conditionFailed(err)) return false;
        throw err;
      }
    },

    async heartbeat(environment, owner, now, detached = false) {
      try {
        await call("renewing the lock", () =>
          doc.send(
            new UpdateCommand({
              TableName: table,
              Key: lockKey(environment),
              UpdateExpression: "SET #heartbeat = :now, #detached = :detached",
              ConditionExpression: "#owner = :owner",
              ExpressionAttributeNames: names,
              ExpressionAttributeValues: { ":now": now, ":detached": detached, ":owner": owner },
            }),
          ),
        );
      } catch (err) {
        if (conditionFailed(err)) {
          throw new LockLostError(
            `another run took over the lock of ${environment}; it drives the release from here, so this run stops`,
          );
        }
        throw err;
      }
    },

    async releaseLock(environment, owner) {
      try {
        await call("releasing the lock", () =>
          doc.send(
            new DeleteCommand({
              TableName: table,
              Key: lockKey(environment),
              ConditionExpression: "#owner = :owner",
              ExpressionAttributeNames: { "#owner": "owner" },
              ExpressionAttributeValues: { ":owner": owner },
            }),
          ),
        );
      } catch (err) {
        // Someone else holds it now: it is not ours to release.
        if (!conditionFailed(err)) throw err;
      }
    },

    readLock,

    async putRecord(record) {
      await call(`writing release ${record.releaseId}`, () =>
        doc.send(new PutCommand({ TableName: table, Item: record })),
      );
    },

    async getRecord(environment, releaseId) {
      return call(`reading release ${releaseId}`, async () => {
        const got = await doc.send(
          new GetCommand({
            TableName: table,
            Key: { [pk]: environment, [sk]: releaseId },
            ConsistentRead: true,
          }),
        );
        return got.Item as ReleaseRecord | undefined;
      });
    },

    async listRecords(environment, limit) {
      return call("listing releases", async () => {
        const found = await doc.send(
          new QueryCommand({
            TableName: table,
            KeyConditionExpression: "#pk = :env",
            ExpressionAttributeNames: { "#pk": pk },
            ExpressionAttributeValues: { ":env": environment },
            ScanIndexForward: false,
            // The lock item shares the partition.
            Limit: limit + 1,
            ConsistentRead: true,
          }),
        );
        return ((found.Items ?? []) as ReleaseRecord[])
          .filter((item) => item.releaseId !== LEDGER_LOCK_ID)
          .slice(0, limit);
      });
    },
  };
}
