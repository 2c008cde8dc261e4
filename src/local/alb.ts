import { DescribeServicesCommand, ECSClient } from "@aws-sdk/client-ecs";
import { type AwsOptions, createClient } from "../aws/clients.js";
import type { EnvironmentResources } from "../environment.js";
import { ConfigurationError } from "../errors.js";

/** One listener the local AWS serves (GET /astrolens-api/alb/listeners, astrolens_moto/alb.py). */
interface LocalListener {
  listenerArn: string;
  loadBalancerName: string;
  listenerPort: number;
  url: string;
}

/**
 * Where the smoke test reaches the green side of an environment's ECS service in the
 * local AWS. On AWS that is the ALB's DNS name and test port; moto's DNS names do not
 * resolve here, so the local ALB says which local port serves the service's test
 * listener (the listener of `advancedConfiguration.testListenerRule`).
 */
export async function localTestUrl(resources: EnvironmentResources, aws: AwsOptions = {}): Promise<string> {
  const env = aws.env ?? process.env;
  const endpoint = env.AWS_ENDPOINT_URL;
  if (!endpoint) {
    throw new ConfigurationError(
      "AWS_ENDPOINT_URL is not set: load .local/env (run `astrolens-release local up`)",
    );
  }
  const { services } = await createClient(ECSClient, aws).send(
    new DescribeServicesCommand({ cluster: resources.cluster, services: [resources.service] }),
  );
  const rule = services?.[0]?.loadBalancers?.find((lb) => lb.advancedConfiguration?.testListenerRule)
    ?.advancedConfiguration?.testListenerRule;
  if (!rule) {
    throw new ConfigurationError(
      `service ${resources.service} has no test listener rule: bootstrap the environment again with \`astrolens-release local up\``,
    );
  }
  // listener-rule/app/<lb>/<lb-id>/<listener-id>/<rule-id> names its listener.
  const listenerArn = rule.replace(":listener-rule/", ":listener/").replace(/\/[^/]+$/, "");
  const response = await fetch(`${endpoint}/astrolens-api/alb/listeners`);
  if (!response.ok) throw new Error(`the local ALB did not list its listeners: HTTP ${response.status}`);
  const { listeners } = (await response.json()) as { listeners: LocalListener[] };
  const listener = listeners.find((l) => l.listenerArn === listenerArn);
  if (!listener) throw new Error(`the local ALB does not serve listener ${listenerArn}`);
  return listener.url;
}
