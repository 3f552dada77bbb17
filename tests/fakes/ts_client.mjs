// A real third-party MCP client for the parity suite: the TypeScript SDK's `Client` (1.x, handshake era).
//
//     node ts_client.mjs NPM_DIR TARGET PLAN
//
// NPM_DIR is the folder scripts/test installs @modelcontextprotocol/sdk into (.cache/npm). TARGET is
// JSON: {"url": U, "headers": {...}} (Streamable HTTP) or {"command": C, "args": [...], "env": {...},
// "cwd": D} (stdio: a server, or toolgate-shim). PLAN is a JSON list of steps, each
// {"name": N, "op": OP, "params": {...}, "progress": bool, "notices": {METHOD: K}} with OP one of
// listTools, listResources, listResourceTemplates, listPrompts, callTool, readResource,
// subscribeResource, unsubscribeResource, getPrompt, complete, ping, setLoggingLevel. It prints one JSON
// document: what initialize returned, then per step its result or error ({code, message, data}), the
// progress it received, and the log messages and resource updates (METHOD notifications/message or
// notifications/resources/updated) it received, waiting (bounded) for K of each; and, by method in the order they came, the requests the server asked of the
// client (sampling, elicitation, roots), which it answers the same fixed way every time. (A server may
// ask at any moment, e.g. for roots right after it starts, so questions are not tied to steps.)

import { createRequire } from "node:module";
import path from "node:path";

const [npmDir, targetJson, planJson] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(npmDir), "package.json"));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");
const types = require("@modelcontextprotocol/sdk/types.js");

// Each request, and each wait for log messages, is bounded; the Python side bounds the whole run too.
const REQUEST_TIMEOUT_MS = 15000;
const NOTICE_WAIT_MS = 5000;

const target = JSON.parse(targetJson);
const plan = JSON.parse(planJson);

let step = null; // what the running step has received so far
let noticeArrived = () => {};

function errorOf(error) {
  if (error instanceof types.McpError) {
    return { code: error.code, message: error.message, data: error.data ?? null };
  }
  return { code: null, message: String(error?.message ?? error), data: null };
}

function transportFor(target) {
  if (target.url) {
    return new StreamableHTTPClientTransport(new URL(target.url), { requestInit: { headers: target.headers ?? {} } });
  }
  return new StdioClientTransport({
    command: target.command,
    args: target.args ?? [],
    env: target.env ?? {},
    cwd: target.cwd,
    stderr: "ignore",
  });
}

const client = new Client(
  { name: "toolgate-parity-ts", version: "1.0.0" },
  { capabilities: { sampling: {}, elicitation: { form: {}, url: {} }, roots: { listChanged: true } } },
);

const asked = {};

function ask(method, params) {
  (asked[method] ??= []).push(params);
}

client.setRequestHandler(types.CreateMessageRequestSchema, async (request) => {
  ask(request.method, request.params);
  return { role: "assistant", content: { type: "text", text: "a model's answer" }, model: "parity-model" };
});
client.setRequestHandler(types.ElicitRequestSchema, async (request) => {
  ask(request.method, request.params);
  if (request.params.mode === "url") {
    return { action: "decline" };
  }
  const fields = Object.keys(request.params.requestedSchema?.properties ?? {});
  return { action: "accept", content: Object.fromEntries(fields.map((field) => [field, answerFor(request, field)])) };
});
client.setRequestHandler(types.ListRootsRequestSchema, async (request) => {
  ask(request.method, request.params);
  return { roots: [{ uri: "file:///work/parity", name: "parity" }] };
});
// Progress is read here, not through a call's `onprogress`: the SDK runs notification handlers a
// microtask late, so the last notification read together with its response (stdio) would miss it.
client.setNotificationHandler(types.ProgressNotificationSchema, (notification) => {
  const { progressToken, ...progress } = notification.params;
  step?.progress?.push(progress);
});
// Kept only for a step that expects them: a server may log, or announce an update, at any moment.
for (const schema of [types.LoggingMessageNotificationSchema, types.ResourceUpdatedNotificationSchema]) {
  client.setNotificationHandler(schema, (notification) => {
    step?.notices?.[notification.method]?.push(notification.params);
    noticeArrived();
  });
}

function answerFor(request, field) {
  const property = request.params.requestedSchema.properties[field];
  if (property.type === "boolean") return true;
  if (property.type === "number" || property.type === "integer") return property.minimum ?? 1;
  if (property.enum) return property.enum[0];
  if (property.oneOf) return property.oneOf[0].const;
  if (property.type === "array") {
    return property.items?.enum?.slice(0, 1) ?? property.items?.anyOf?.slice(0, 1).map((option) => option.const) ?? [];
  }
  if (property.format === "email") return "parity@example.invalid";
  if (property.format === "date") return "2026-01-01";
  if (property.format === "uri") return "https://example.invalid/parity";
  return "Parity";
}

async function waitForNotices(expected) {
  const deadline = Date.now() + NOTICE_WAIT_MS;
  const missing = () => Object.entries(expected).some(([method, count]) => step.notices[method].length < count);
  while (missing() && Date.now() < deadline) {
    let timer;
    await new Promise((resolve) => {
      noticeArrived = resolve;
      timer = setTimeout(resolve, deadline - Date.now());
    });
    clearTimeout(timer); // a pending timer would keep Node running after the last step
  }
  noticeArrived = () => {};
}

async function run(entry) {
  const options = { timeout: REQUEST_TIMEOUT_MS };
  if (entry.progress) {
    options.onprogress = () => {}; // asks for progress: the request carries a progress token
  }
  const params = entry.params ?? {};
  switch (entry.op) {
    case "listTools": return client.listTools(params, options);
    case "listResources": return client.listResources(params, options);
    case "listResourceTemplates": return client.listResourceTemplates(params, options);
    case "listPrompts": return client.listPrompts(params, options);
    case "callTool": return client.callTool(params, undefined, options);
    case "readResource": return client.readResource(params, options);
    case "subscribeResource": return client.subscribeResource(params, options);
    case "unsubscribeResource": return client.unsubscribeResource(params, options);
    case "getPrompt": return client.getPrompt(params, options);
    case "complete": return client.complete(params, options);
    case "ping": return client.ping(options);
    case "setLoggingLevel": return client.setLoggingLevel(params.level, options);
    default: throw new Error(`unknown op ${entry.op}`);
  }
}

const report = { initialize: null, steps: [], asked };
await client.connect(transportFor(target), { timeout: REQUEST_TIMEOUT_MS });
report.initialize = {
  serverInfo: client.getServerVersion(),
  capabilities: client.getServerCapabilities(),
  instructions: client.getInstructions() ?? null,
};
for (const entry of plan) {
  step = { name: entry.name };
  if (entry.progress) {
    step.progress = [];
  }
  if (entry.notices) {
    step.notices = Object.fromEntries(Object.keys(entry.notices).map((method) => [method, []]));
  }
  try {
    step.result = await run(entry);
  } catch (error) {
    step.error = errorOf(error);
  }
  if (entry.notices) {
    await waitForNotices(entry.notices);
  }
  report.steps.push(step);
}
step = null;
await client.close();
process.stdout.write(JSON.stringify(report) + "\n");
