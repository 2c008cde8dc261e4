import packageJson from "../package.json" with { type: "json" };

/** The toolkit's one version, sent in the AWS user agent and printed by the CLI. */
export const TOOLKIT_VERSION: string = packageJson.version;
