import { Duration } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as elbv2 from "aws-cdk-lib/aws-elasticloadbalancingv2";
import { Construct } from "constructs";
import type { EnvironmentResources } from "../../src/environment.ts";
import type { AlarmSettings } from "./settings.ts";

/** The service's embedded-metric namespace and metric (service/src/server/emf.ts). */
export const ANOMALY_NAMESPACE = "AstroLens/Inference";
export const ANOMALY_METRIC = "AnomalyRate";

/**
 * The production variant of every endpoint configuration. SageMaker publishes its
 * metrics per EndpointName *and* VariantName, and an alarm must name both, so the
 * toolkit's configurations must keep this variant name (copying the current one does).
 */
export const SAGEMAKER_VARIANT = "AllTraffic";

export interface ReleaseMonitoringProps {
  names: EnvironmentResources;
  loadBalancer: elbv2.ApplicationLoadBalancer;
  settings: AlarmSettings;
}

/**
 * The alarms the release watches (by the contract's names: ECS blue/green rolls back
 * on them, SageMaker's guardrails too, and the toolkit reads them), and a dashboard.
 *
 * Missing data is NOT_BREACHING everywhere, on purpose: each of these metrics is only
 * published when something happens — ALB status-code counts only when non-zero, latency
 * and AnomalyRate only when there were requests or tiles — so "no data" means "no
 * traffic", which is not a failure. A target that cannot answer at all is caught by the
 * smoke test and the health checks, not by these alarms.
 */
export class ReleaseMonitoring extends Construct {
  readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: ReleaseMonitoringProps) {
    super(scope, id);
    const { names, loadBalancer, settings } = props;
    const period = Duration.seconds(settings.periodSeconds);
    const evaluation = {
      evaluationPeriods: settings.evaluationPeriods,
      datapointsToAlarm: settings.datapointsToAlarm,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    };
    const endpoint = { EndpointName: names.endpoint, VariantName: SAGEMAKER_VARIANT };

    // Errors as a share of requests, not a count: a count would fire on a busy day and
    // sleep through a quiet one. FILL: the 5xx count is absent, not 0, when there were none.
    const target5xxRate = new cloudwatch.MathExpression({
      expression: "100 * FILL(errors, 0) / requests",
      label: "Target 5xx (% of requests)",
      period,
      usingMetrics: {
        errors: loadBalancer.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, {
          period,
          statistic: cloudwatch.Stats.SUM,
        }),
        requests: loadBalancer.metrics.requestCount({ period, statistic: cloudwatch.Stats.SUM }),
      },
    });

    const definitions: Array<{
      name: string;
      description: string;
      metric: cloudwatch.IMetric;
      threshold: number;
    }> = [
      {
        name: names.alarms.albTarget5xxRate,
        description: `ALB target 5xx responses above ${settings.target5xxRatePercent}% of requests`,
        metric: target5xxRate,
        threshold: settings.target5xxRatePercent,
      },
      {
        name: names.alarms.albP99Latency,
        description: `ALB p99 target response time above ${settings.p99LatencySeconds} s`,
        metric: loadBalancer.metrics.targetResponseTime({ period, statistic: cloudwatch.Stats.p(99) }),
        threshold: settings.p99LatencySeconds,
      },
      {
        name: names.alarms.sagemakerInvocation5xx,
        description: `SageMaker Invocation5XXErrors of ${names.endpoint} at or above ${settings.sagemaker5xxErrors} per period`,
        metric: new cloudwatch.Metric({
          namespace: "AWS/SageMaker",
          metricName: "Invocation5XXErrors",
          dimensionsMap: endpoint,
          period,
          statistic: cloudwatch.Stats.SUM,
        }),
        // GreaterThanOrEqual below: one 5xx per period is already an error.
        threshold: settings.sagemaker5xxErrors,
      },
      {
        name: names.alarms.sagemakerModelLatency,
        description: `SageMaker p99 ModelLatency of ${names.endpoint} above ${settings.modelLatencyP99Ms} ms`,
        metric: new cloudwatch.Metric({
          namespace: "AWS/SageMaker",
          metricName: "ModelLatency",
          dimensionsMap: endpoint,
          period,
          statistic: cloudwatch.Stats.p(99),
        }),
        // ModelLatency is reported in microseconds.
        threshold: settings.modelLatencyP99Ms * 1000,
      },
      {
        name: names.alarms.anomalyRate,
        description:
          `Share of tiles the model flags as anomalous above ${settings.anomalyRatePercent}% ` +
          "(a model that suddenly flags everything)",
        metric: new cloudwatch.Metric({
          namespace: ANOMALY_NAMESPACE,
          metricName: ANOMALY_METRIC,
          // The service emits [Service] and [Service, ModelVersion]; the first spans versions,
          // so the alarm keeps watching across a release.
          dimensionsMap: { Service: names.service },
          unit: cloudwatch.Unit.PERCENT,
          period,
          statistic: cloudwatch.Stats.AVERAGE,
        }),
        threshold: settings.anomalyRatePercent,
      },
    ];

    this.alarms = definitions.map(
      (definition) =>
        new cloudwatch.Alarm(this, definition.name, {
          alarmName: definition.name,
          alarmDescription: definition.description,
          metric: definition.metric,
          threshold: definition.threshold,
          comparisonOperator:
            definition.name === names.alarms.sagemakerInvocation5xx
              ? cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
              : cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          ...evaluation,
        }),
    );

    new cloudwatch.Dashboard(this, "Dashboard", {
      dashboardName: names.dashboard,
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          new cloudwatch.AlarmStatusWidget({
            title: "Release alarms",
            alarms: this.alarms,
            width: 24,
            height: 3,
          }),
        ],
        this.alarms.map(
          (alarm, index) =>
            new cloudwatch.AlarmWidget({
              title: definitions[index]?.description ?? alarm.alarmName,
              alarm,
              width: 8,
              height: 6,
            }),
        ),
      ],
    });
  }
}
