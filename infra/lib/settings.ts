import type { ENVIRONMENTS } from "../../src/environment.ts";
import { ConfigurationError } from "../../src/errors.ts";

/** One of the environments the naming contract defines. */
export type EnvironmentName = (typeof ENVIRONMENTS)[number];

/**
 * Everything that differs between environments, in one place. Names are not here: they
 * come from the naming contract (`src/environment.ts`), so the toolkit finds every
 * resource without a lookup.
 */
export interface EnvironmentSettings {
  environment: EnvironmentName;
  /** The AWS account; undefined synthesizes an account-agnostic template. */
  account: string | undefined;
  region: string;
  /**
   * Written out rather than looked up: an environment-specific stack would otherwise ask
   * AWS for the region's zones during synth, which needs credentials and network.
   */
  availabilityZones: [string, string];
  vpcCidr: string;
  /** Who may call the production listener (the ALB is internal). */
  clientCidrs: string[];
  service: {
    /** Fargate CPU units and memory: the models are loaded in every task. */
    cpu: number;
    memoryMiB: number;
    desiredCount: number;
  };
  blueGreen: {
    /** How long both revisions run after production traffic moved, alarms watching. */
    bakeMinutes: number;
    /** How long ECS waits for the smoke-test hook before it rolls back. */
    hookTimeoutMinutes: number;
  };
  sagemaker: {
    instanceType: string;
    initialInstanceCount: number;
  };
  smokeTest: {
    /** The Lambda's own timeout; ECS requires an answer within 15 minutes. */
    timeoutSeconds: number;
    memoryMiB: number;
  };
  alarms: AlarmSettings;
  github: GitHubTrust;
  /**
   * Environments whose images this one's deploy role may pull (never push): promote.yml
   * and release.yml copy an already released digest from there (same account; another
   * account also needs a repository policy on the source repository).
   */
  promotesFrom: EnvironmentName[];
  /** Production keeps its ledger if the stack goes: deletion protection and RETAIN. */
  retainData: boolean;
  logRetentionDays: number;
  /**
   * `bootstrapped`: the CDK's default synthesizer (`cdk bootstrap` done in the account).
   * `bootstrapless`: no bootstrap version rule, assets in a fixed bucket — for the local
   * AWS, where the bootstrap creates that bucket and uploads the one asset itself.
   */
  synthesizer: "bootstrapped" | "bootstrapless";
}

export interface AlarmSettings {
  /** Each alarm evaluates `evaluationPeriods` periods of `periodSeconds`, firing on `datapointsToAlarm`. */
  periodSeconds: number;
  evaluationPeriods: number;
  datapointsToAlarm: number;
  /** ALB: target 5xx responses as a percentage of requests. */
  target5xxRatePercent: number;
  /** ALB: p99 TargetResponseTime in seconds. */
  p99LatencySeconds: number;
  /** SageMaker: Invocation5XXErrors per period. */
  sagemaker5xxErrors: number;
  /** SageMaker: p99 ModelLatency in milliseconds (the metric itself is in microseconds). */
  modelLatencyP99Ms: number;
  /**
   * The service's AnomalyRate (percent of tiles flagged). The OOD thresholds keep 95% of
   * in-distribution tiles, so about 5% is normal; a model that flags far more is broken.
   */
  anomalyRatePercent: number;
}

export interface GitHubTrust {
  /** `owner/name` of this repository. */
  repository: string;
  /** Branches whose workflow runs may assume the deploy role (`ref:refs/heads/<branch>`). */
  branches: string[];
  /** GitHub environments whose jobs may assume it (`environment:<name>`). */
  environments: string[];
  /**
   * One account holds one provider per URL: the first stack in an account creates it,
   * others (staging and production in one account) reference it by ARN.
   */
  createOidcProvider: boolean;
}

/** The repository the deploy roles trust unless `astrolens:githubRepository` says otherwise. */
export const DEFAULT_GITHUB_REPOSITORY = "astrolens/astrolens-release";

/** The local AWS: moto's default account and the region `astrolens-release local up` writes. */
const LOCAL_ACCOUNT = "123456789012";
const LOCAL_REGION = "us-east-1";
const DEFAULT_REGION = "eu-west-1";

const SHARED_ALARMS: AlarmSettings = {
  periodSeconds: 60,
  evaluationPeriods: 3,
  datapointsToAlarm: 2,
  target5xxRatePercent: 1,
  p99LatencySeconds: 2,
  sagemaker5xxErrors: 1,
  modelLatencyP99Ms: 1500,
  anomalyRatePercent: 25,
};

const DEFAULTS: Record<
  EnvironmentName,
  Omit<EnvironmentSettings, "account" | "region" | "availabilityZones">
> = {
  local: {
    environment: "local",
    vpcCidr: "10.40.0.0/16",
    clientCidrs: ["10.40.0.0/16"],
    service: { cpu: 1024, memoryMiB: 2048, desiredCount: 1 },
    // The local AWS runs a scaled clock; a short bake keeps a local release quick.
    blueGreen: { bakeMinutes: 1, hookTimeoutMinutes: 5 },
    sagemaker: { instanceType: "ml.m5.large", initialInstanceCount: 1 },
    smokeTest: { timeoutSeconds: 120, memoryMiB: 512 },
    alarms: SHARED_ALARMS,
    github: {
      repository: DEFAULT_GITHUB_REPOSITORY,
      branches: ["main"],
      environments: [],
      createOidcProvider: true,
    },
    promotesFrom: [],

    retainData: false,
    logRetentionDays: 7,
    synthesizer: "bootstrapless",
  },
  staging: {
    environment: "staging",
    vpcCidr: "10.41.0.0/16",
    clientCidrs: ["10.41.0.0/16"],
    service: { cpu: 1024, memoryMiB: 2048, desiredCount: 1 },
    blueGreen: { bakeMinutes: 5, hookTimeoutMinutes: 10 },
    sagemaker: { instanceType: "ml.m5.large", initialInstanceCount: 1 },
    smokeTest: { timeoutSeconds: 120, memoryMiB: 512 },
    alarms: SHARED_ALARMS,
    // Pushes to main release to staging; so may a job bound to the "staging" environment.
    github: {
      repository: DEFAULT_GITHUB_REPOSITORY,
      branches: ["main"],
      environments: ["staging"],
      createOidcProvider: true,
    },
    promotesFrom: [],

    retainData: false,
    logRetentionDays: 30,
    synthesizer: "bootstrapped",
  },
  production: {
    environment: "production",
    vpcCidr: "10.42.0.0/16",
    clientCidrs: ["10.42.0.0/16"],
    service: { cpu: 1024, memoryMiB: 2048, desiredCount: 2 },
    blueGreen: { bakeMinutes: 15, hookTimeoutMinutes: 10 },
    sagemaker: { instanceType: "ml.m5.xlarge", initialInstanceCount: 2 },
    smokeTest: { timeoutSeconds: 120, memoryMiB: 512 },
    alarms: { ...SHARED_ALARMS, evaluationPeriods: 5, datapointsToAlarm: 3 },
    // Only jobs bound to the "production" GitHub environment (reviewers, wait timers) —
    // never a plain branch push.
    github: {
      repository: DEFAULT_GITHUB_REPOSITORY,
      branches: [],
      environments: ["production"],
      createOidcProvider: true,
    },
    promotesFrom: ["staging"],

    retainData: true,
    logRetentionDays: 365,
    synthesizer: "bootstrapped",
  },
};

/** Reads a context value (from cdk.json or `-c key=value`). */
export type ContextReader = (key: string) => unknown;

/**
 * The settings of one environment: the defaults above, then per-environment context
 * (`-c astrolens:<env>:account=…`, `…:region`, `…:availabilityZones=a,b`,
 * `…:createOidcProvider=false`, `…:synthesizer=bootstrapless`) or environment variables
 * (`ASTROLENS_<ENV>_ACCOUNT`, `ASTROLENS_<ENV>_REGION`), and `-c astrolens:githubRepository=owner/name`.
 * With nothing given it synthesizes offline: the account stays unset (account-agnostic)
 * except for `local`, whose account is moto's.
 */
export function resolveSettings(
  environment: EnvironmentName,
  context: ContextReader = () => undefined,
  env: Record<string, string | undefined> = {},
): EnvironmentSettings {
  const defaults = DEFAULTS[environment];
  const upper = environment.toUpperCase();
  const read = (key: string, variable?: string): string | undefined => {
    const fromContext = context(`astrolens:${environment}:${key}`);
    if (fromContext !== undefined && fromContext !== null && String(fromContext) !== "")
      return String(fromContext);
    const fromEnv = variable ? env[variable] : undefined;
    return fromEnv?.trim() ? fromEnv.trim() : undefined;
  };

  const account =
    read("account", `ASTROLENS_${upper}_ACCOUNT`) ?? (environment === "local" ? LOCAL_ACCOUNT : undefined);
  if (account !== undefined && !/^\d{12}$/.test(account)) {
    throw new ConfigurationError(
      `astrolens:${environment}:account (or ASTROLENS_${upper}_ACCOUNT) must be a 12-digit AWS account id, got "${account}"`,
    );
  }
  const region =
    read("region", `ASTROLENS_${upper}_REGION`) ?? (environment === "local" ? LOCAL_REGION : DEFAULT_REGION);
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) {
    throw new ConfigurationError(
      `astrolens:${environment}:region (or ASTROLENS_${upper}_REGION) must be an AWS region such as "eu-west-1", got "${region}"`,
    );
  }
  const zones = (read("availabilityZones") ?? `${region}a,${region}b`).split(",").map((zone) => zone.trim());
  if (
    zones.length !== 2 ||
    zones.some((zone) => !zone.startsWith(region) || zone.length !== region.length + 1)
  ) {
    throw new ConfigurationError(
      `astrolens:${environment}:availabilityZones must name two zones of ${region}, comma-separated ` +
        `(for example "${region}a,${region}b"), got "${zones.join(",")}"`,
    );
  }

  const repository = String(context("astrolens:githubRepository") ?? defaults.github.repository);
  if (!/^[A-Za-z0-9][A-Za-z0-9-]{0,38}\/[A-Za-z0-9._-]{1,100}$/.test(repository)) {
    throw new ConfigurationError(
      `astrolens:githubRepository must be "owner/name" of the GitHub repository, got "${repository}"`,
    );
  }
  const createProvider = read("createOidcProvider");
  if (createProvider !== undefined && createProvider !== "true" && createProvider !== "false") {
    throw new ConfigurationError(
      `astrolens:${environment}:createOidcProvider must be true or false, got "${createProvider}"`,
    );
  }

  // A rehearsal of this environment in the local AWS has no `cdk bootstrap`: the local
  // bootstrap uploads the assets itself (src/local/environment.ts).
  const synthesizer = read("synthesizer") ?? defaults.synthesizer;
  if (synthesizer !== "bootstrapped" && synthesizer !== "bootstrapless") {
    throw new ConfigurationError(
      `astrolens:${environment}:synthesizer must be bootstrapped or bootstrapless, got "${synthesizer}"`,
    );
  }

  const settings: EnvironmentSettings = {
    ...defaults,
    synthesizer,
    account,
    region,
    availabilityZones: [zones[0] as string, zones[1] as string],
    github: {
      ...defaults.github,
      repository,
      createOidcProvider:
        createProvider === undefined ? defaults.github.createOidcProvider : createProvider === "true",
    },
  };
  validateSettings(settings);
  return settings;
}

/** Ranges AWS enforces, checked at synth rather than discovered mid-deploy. */
export function validateSettings(settings: EnvironmentSettings): void {
  const problems: string[] = [];
  const { blueGreen, github, alarms, smokeTest } = settings;
  if (!Number.isInteger(blueGreen.bakeMinutes) || blueGreen.bakeMinutes < 0 || blueGreen.bakeMinutes > 1440) {
    problems.push(`blueGreen.bakeMinutes must be a whole number 0-1440 (ECS), got ${blueGreen.bakeMinutes}`);
  }
  if (blueGreen.hookTimeoutMinutes < 1 || blueGreen.hookTimeoutMinutes > 1440) {
    problems.push(`blueGreen.hookTimeoutMinutes must be 1-1440, got ${blueGreen.hookTimeoutMinutes}`);
  }
  if (smokeTest.timeoutSeconds < 1 || smokeTest.timeoutSeconds > 900) {
    problems.push(`smokeTest.timeoutSeconds must be 1-900 (an ECS hook must answer within 15 minutes)`);
  }
  if (github.branches.length + github.environments.length === 0) {
    problems.push("github: name at least one branch or environment, or nothing could assume the deploy role");
  }
  for (const name of [...github.branches, ...github.environments]) {
    // The names go into an exact-match trust condition: a wildcard would widen it.
    if (!/^[A-Za-z0-9._/-]+$/.test(name))
      problems.push(`github: "${name}" is not a plain branch or environment name`);
  }
  if (alarms.datapointsToAlarm > alarms.evaluationPeriods) {
    problems.push("alarms.datapointsToAlarm must not exceed alarms.evaluationPeriods");
  }
  if (settings.service.desiredCount < 1) problems.push("service.desiredCount must be at least 1");
  if (problems.length > 0) {
    throw new ConfigurationError(`settings for "${settings.environment}": ${problems.join("; ")}`);
  }
}
