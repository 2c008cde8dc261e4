import { ConfigurationError } from "./errors.js";

/**
 * The names of one environment's resources: the single naming contract between the CDK
 * app (`infra/`), the local bootstrap, `status`, and the deploy coordinator. The CDK
 * stacks give every resource these physical names, so the toolkit can find them without
 * a lookup and a reviewer can read them off a template.
 */
export interface EnvironmentResources {
  environment: string;
  stackName: string;
  ecrRepository: string;
  cluster: string;
  service: string;
  taskFamily: string;
  containerName: string;
  containerPort: number;
  loadBalancer: string;
  blueTargetGroup: string;
  greenTargetGroup: string;
  endpoint: string;
  smokeFunction: string;
  ledgerTable: string;
  topic: string;
  dashboard: string;
  deployRole: string;
  alarms: {
    albTarget5xxRate: string;
    albP99Latency: string;
    sagemakerInvocation5xx: string;
    sagemakerModelLatency: string;
    anomalyRate: string;
  };
}

/** Lower-case, starts with a letter; short enough for ALB and target-group names (32). */
const ENVIRONMENT_NAME = /^[a-z][a-z0-9-]{0,13}[a-z0-9]$|^[a-z]$/;

/** The environments this repository defines; `local` is the local AWS rehearsal. */
export const ENVIRONMENTS = ["local", "staging", "production"] as const;

export function environmentResources(environment: string): EnvironmentResources {
  if (!ENVIRONMENT_NAME.test(environment)) {
    throw new ConfigurationError(
      `environment "${environment}" is not a valid name: use 1-15 lower-case letters, digits or hyphens, ` +
        `starting with a letter (for example "staging")`,
    );
  }
  const prefix = `astrolens-${environment}`;
  return {
    environment,
    stackName: prefix,
    ecrRepository: `${prefix}/inference`,
    cluster: prefix,
    service: `${prefix}-inference`,
    taskFamily: `${prefix}-inference`,
    containerName: "inference",
    containerPort: 8080,
    loadBalancer: prefix,
    blueTargetGroup: `${prefix}-blue`,
    greenTargetGroup: `${prefix}-green`,
    endpoint: `${prefix}-inference`,
    smokeFunction: `${prefix}-smoke-test`,
    ledgerTable: `${prefix}-releases`,
    topic: `${prefix}-releases`,
    dashboard: prefix,
    deployRole: `${prefix}-deploy`,
    alarms: {
      albTarget5xxRate: `${prefix}-alb-target-5xx-rate`,
      albP99Latency: `${prefix}-alb-p99-latency`,
      sagemakerInvocation5xx: `${prefix}-sagemaker-invocation-5xx`,
      sagemakerModelLatency: `${prefix}-sagemaker-model-latency`,
      anomalyRate: `${prefix}-anomaly-rate`,
    },
  };
}

/**
 * The ledger table's key: one item per release (`releaseId`), and one lock item per
 * environment (`releaseId` = LEDGER_LOCK_ID) whose conditional write admits one release
 * at a time.
 */
export const LEDGER_KEY = { partition: "environment", sort: "releaseId" } as const;
export const LEDGER_LOCK_ID = "#lock";

/** Every alarm the release watches, in a stable order. */
export function releaseAlarms(resources: EnvironmentResources): string[] {
  return Object.values(resources.alarms);
}
