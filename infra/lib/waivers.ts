import { CfnResource, Validations } from "aws-cdk-lib";
import type { IConstruct } from "constructs";

/** A linter finding we accept on one resource, with the reason written next to it. */
export interface Waiver {
  tool: "checkov" | "cfn-lint";
  id: string;
  reason: string;
}

/** Where the reasons of cfn-lint waivers live (cfn-lint's own metadata has no place for them). */
export const CFN_LINT_REASONS_KEY = "cfn-lint-reasons";

/**
 * Records a waiver in the resource's template metadata, where the tool reads it:
 * checkov's `skip` list (id + comment) or cfn-lint's `ignore_checks` (with the reason
 * under {@link CFN_LINT_REASONS_KEY}). A cfn-lint waiver also acknowledges the same rule
 * in the CDK's own synth-time validator, which reports cfn-lint's rule ids. The tests fail
 * on a waiver without a reason.
 */
export function waive(construct: IConstruct, waiver: Waiver): void {
  if (!waiver.reason.trim()) throw new Error(`waiver ${waiver.id} on ${construct.node.path} needs a reason`);
  const resource = cfnResourceOf(construct);
  if (waiver.tool === "checkov") {
    const checkov = (resource.getMetadata("checkov") as
      | { skip: { id: string; comment: string }[] }
      | undefined) ?? {
      skip: [],
    };
    checkov.skip.push({ id: waiver.id, comment: waiver.reason });
    resource.addMetadata("checkov", checkov);
  } else {
    const lint = (resource.getMetadata("cfn-lint") as
      | { config: { ignore_checks: string[] } }
      | undefined) ?? {
      config: { ignore_checks: [] },
    };
    lint.config.ignore_checks.push(waiver.id);
    resource.addMetadata("cfn-lint", lint);
    const reasons = (resource.getMetadata(CFN_LINT_REASONS_KEY) as Record<string, string> | undefined) ?? {};
    reasons[waiver.id] = waiver.reason;
    resource.addMetadata(CFN_LINT_REASONS_KEY, reasons);
    Validations.of(resource).acknowledge({
      id: `CloudFormation-Validate::${waiver.id}`,
      reason: waiver.reason,
    });
  }
}

function cfnResourceOf(construct: IConstruct): CfnResource {
  if (construct instanceof CfnResource) return construct;
  const child = construct.node.defaultChild;
  if (child instanceof CfnResource) return child;
  throw new Error(`${construct.node.path} has no CloudFormation resource to attach a waiver to`);
}

/**
 * Acknowledges a warning of the CDK's synth-time validator (it reports cfn-lint's rule
 * ids) where cfn-lint itself stays silent, e.g. W3010, which cfn-lint skips for
 * CDK-generated resources. The reason is kept in the construct's metadata.
 */
export function acknowledgeSynthWarning(construct: IConstruct, id: string, reason: string): void {
  if (!reason.trim()) throw new Error(`acknowledging ${id} on ${construct.node.path} needs a reason`);
  Validations.of(cfnResourceOf(construct)).acknowledge({ id: `CloudFormation-Validate::${id}`, reason });
}
