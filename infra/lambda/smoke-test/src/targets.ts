/**
 * The two kinds of target, behind one interface so the runner and its checks do not care
 * which they test: the service over HTTP (the ALB test listener, or a local process) and a
 * SageMaker endpoint through InvokeEndpoint.
 */
import { InvokeEndpointCommand, type SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";

/** An HTTP answer, whatever its status. */
export interface Reply {
  status: number;
  contentType: string;
  body: string;
}

export interface SmokeTarget {
  /** Names the target in the verdict. */
  readonly label: string;
  /** GET /ping; absent when callers cannot reach the container's /ping. */
  ping?(signal: AbortSignal): Promise<Reply>;
  /** Why there is no `ping`, for the skipped check. */
  readonly pingSkipped?: string;
  /** POST /invocations. Rejects only when there is no answer at all. */
  invoke(body: Uint8Array, contentType: string, signal: AbortSignal): Promise<Reply>;
}

/** The service at `baseUrl` (routes resolve under its path, so a path-routed listener works). */
export function httpTarget(baseUrl: string, fetchImpl: typeof fetch = fetch): SmokeTarget {
  const base = baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`;
  const send = async (route: string, init: RequestInit): Promise<Reply> => {
    const response = await fetchImpl(new URL(route, base), init);
    return {
      status: response.status,
      contentType: response.headers.get("content-type") ?? "",
      body: await response.text(),
    };
  };
  return {
    label: baseUrl,
    ping: (signal) => send("ping", { method: "GET", signal }),
    invoke: (body, contentType, signal) =>
      // A copy typed as fetch wants it (its own ArrayBuffer); the images are a few kB.
      send("invocations", {
        method: "POST",
        headers: { "content-type": contentType },
        body: new Uint8Array(body),
        signal,
      }),
  };
}

/**
 * A SageMaker endpoint. The container's non-2xx answers arrive as a `ModelError` carrying
 * the original status and body; they become that reply, so the checks judge them as they
 * judge HTTP. Other SDK errors (no such endpoint, throttling, credentials) reject.
 */
export function sageMakerTarget(
  client: Pick<SageMakerRuntimeClient, "send">,
  endpointName: string,
  targetVariant?: string,
): SmokeTarget {
  return {
    label: `sagemaker:${endpointName}${targetVariant === undefined ? "" : `/${targetVariant}`}`,
    pingSkipped:
      "SageMaker does not expose the container's /ping to callers (it pings the container itself before the endpoint is InService); the model identity is checked in every invocation instead",
    invoke: async (body, contentType, signal) => {
      try {
        const output = await client.send(
          new InvokeEndpointCommand({
            EndpointName: endpointName,
            ...(targetVariant === undefined ? {} : { TargetVariant: targetVariant }),
            ContentType: contentType,
            Accept: "application/json",
            Body: body,
          }),
          { abortSignal: signal },
        );
        return {
          status: 200,
          contentType: output.ContentType ?? "",
          body: new TextDecoder().decode(output.Body),
        };
      } catch (err) {
        const modelError = err as { name?: unknown; OriginalStatusCode?: number; OriginalMessage?: string };
        if (modelError.name === "ModelError") {
          return {
            status: modelError.OriginalStatusCode ?? 0,
            contentType: "",
            body: modelError.OriginalMessage ?? (err as Error).message,
          };
        }
        throw err;
      }
    },
  };
}
