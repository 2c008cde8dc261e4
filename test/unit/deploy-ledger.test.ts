import { spawn } from "node:child_process";
import { hostname } from "node:os";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import {
  createDynamoLedger,
  type LockItem,
  LockLostError,
  lockIsLive,
  newReleaseId,
} from "../../src/deploy/ledger.js";
import { runnerGoneHere } from "../../src/deploy/release.js";
import { ConfigurationError } from "../../src/errors.js";

const docMock = mockClient(DynamoDBDocumentClient);
const doc = DynamoDBDocumentClient.from(new DynamoDBClient({ region: "us-east-1" }));
const TABLE = "astrolens-staging-releases";
const ledger = createDynamoLedger(doc, TABLE);

const lock: LockItem = {
  environment: "staging",
  releaseId: "#lock",
  holder: "20261126T100000Z-aaaaaaaaaaaa",
  digest: `sha256:${"a".repeat(64)}`,
  startedAt: "2026-11-26T10:00:00.000Z",
  heartbeatAt: "2026-11-26T10:00:00.000Z",
  owner: "me",
  detached: false,
};

function conditionFailed() {
  return Object.assign(new Error("The conditional request failed"), {
    name: "ConditionalCheckFailedException",
    $metadata: { httpStatusCode: 400 },
  });
}

beforeEach(() => docMock.reset());

describe("release ids", () => {
  it("are the UTC start time and 12 hex of the digest: sortable and readable", () => {
    expect(newReleaseId(Date.parse("2026-11-26T10:00:00.123Z"), `sha256:${"3f".repeat(32)}`)).toBe(
      "20261126T100000Z-3f3f3f3f3f3f",
    );
    // The lock item's id sorts apart from every release id.
    expect("#lock" < "2").toBe(true);
  });
});

describe("lockIsLive", () => {
  const now = Date.parse("2026-11-26T10:01:00Z");
  it("is live while renewed and not detached", () => {
    expect(lockIsLive(lock, now, 120_000)).toBe(true);
    expect(lockIsLive(lock, now, 30_000)).toBe(false);
    expect(lockIsLive({ ...lock, detached: true }, now, 120_000)).toBe(false);
  });

  it("is not live once its runner's process is known to be gone, however fresh the heartbeat", () => {
    expect(lockIsLive(lock, now, 120_000, true)).toBe(false);
  });
});

describe("runnerGoneHere", () => {
  it("knows a process of this machine that has exited; never judges this process or another machine's", async () => {
    const child = spawn(process.execPath, ["-e", ""]);
    const pid = child.pid ?? 0;
    await new Promise((resolve) => child.on("exit", resolve));
    expect(runnerGoneHere({ host: hostname(), pid })).toBe(true);
    expect(runnerGoneHere({ host: hostname(), pid: process.pid })).toBe(false);
    expect(runnerGoneHere({ host: `not-${hostname()}`, pid })).toBe(false);
  });
});

describe("the DynamoDB ledger", () => {
  it("takes the lock with a conditional write keyed by the contract", async () => {
    docMock.on(PutCommand).resolves({});
    expect(await ledger.acquireLock(lock)).toEqual({ acquired: true });
    expect(docMock.commandCalls(PutCommand)[0]?.args[0].input).toEqual({
      TableName: TABLE,
      Item: lock,
      ConditionExpression: "attribute_not_exists(#sk)",
      ExpressionAttributeNames: { "#sk": "releaseId" },
    });
  });

  it("reports the holder when the lock is taken", async () => {
    docMock.on(PutCommand).rejects(conditionFailed());
    const holder = { ...lock, holder: "other", owner: "them" };
    docMock.on(GetCommand).resolves({ Item: holder });
    expect(await ledger.acquireLock(lock)).toEqual({ acquired: false, holder });
    expect(docMock.commandCalls(GetCommand)[0]?.args[0].input).toEqual({
      TableName: TABLE,
      Key: { environment: "staging", releaseId: "#lock" },
      ConsistentRead: true,
    });
  });

  it("renews the lock only while it owns it", async () => {
    docMock.on(UpdateCommand).resolves({});
    await ledger.heartbeat("staging", "me", "2026-11-26T10:00:15.000Z");
    expect(docMock.commandCalls(UpdateCommand)[0]?.args[0].input).toMatchObject({
      ConditionExpression: "#owner = :owner",
      ExpressionAttributeValues: { ":owner": "me", ":now": "2026-11-26T10:00:15.000Z", ":detached": false },
    });
    docMock.on(UpdateCommand).rejects(conditionFailed());
    await expect(ledger.heartbeat("staging", "me", "x")).rejects.toBeInstanceOf(LockLostError);
  });

  it("takes a lock over only from the owner it saw", async () => {
    docMock.on(UpdateCommand).resolves({});
    expect(await ledger.takeOverLock("staging", "dead", "me", "t")).toBe(true);
    expect(docMock.commandCalls(UpdateCommand)[0]?.args[0].input).toMatchObject({
      ConditionExpression: "#owner = :seen",
      ExpressionAttributeValues: { ":owner": "me", ":seen": "dead" },
    });
    docMock.on(UpdateCommand).rejects(conditionFailed());
    expect(await ledger.takeOverLock("staging", "dead", "me", "t")).toBe(false);
  });

  it("releases only its own lock", async () => {
    docMock.on(DeleteCommand).rejects(conditionFailed());
    await expect(ledger.releaseLock("staging", "me")).resolves.toBeUndefined();
    expect(docMock.commandCalls(DeleteCommand)[0]?.args[0].input).toMatchObject({
      Key: { environment: "staging", releaseId: "#lock" },
      ConditionExpression: "#owner = :owner",
    });
  });

  it("lists releases newest first, without the lock item", async () => {
    docMock
      .on(QueryCommand)
      .resolves({ Items: [{ releaseId: "2" }, { releaseId: "1" }, { releaseId: "#lock" }] });
    expect((await ledger.listRecords("staging", 5)).map((r) => r.releaseId)).toEqual(["2", "1"]);
    expect(docMock.commandCalls(QueryCommand)[0]?.args[0].input).toMatchObject({
      KeyConditionExpression: "#pk = :env",
      ExpressionAttributeNames: { "#pk": "environment" },
      ScanIndexForward: false,
      Limit: 6,
    });
  });

  it("says how to fix a missing table", async () => {
    docMock.on(GetCommand).rejects(
      Object.assign(new Error("Requested resource not found"), {
        name: "ResourceNotFoundException",
        $metadata: {},
      }),
    );
    const err = await ledger.readLock("staging").catch((e) => e);
    expect(err).toBeInstanceOf(ConfigurationError);
    expect(err.message).toContain(`the release ledger table ${TABLE} does not exist`);
  });
});
