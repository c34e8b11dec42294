// The GraphQL-over-HTTP audit of graphql-http (its auditServer) against a running gateway.
//
//   node tests/http/audit.mjs <url> <api key> [<dir of graphql-http's node_modules' package.json>]
//
// Prints one JSON array: {id, name, status, reason, httpStatus} per audit. Every request
// carries `Authorization: Bearer <api key>`. graphql-http is installed by
// `npm ci --prefix tests/http/node` (.ci/run does it).
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [url, apiKey, packageDir = new URL("./node/", import.meta.url).pathname] =
  process.argv.slice(2);
if (!url || !apiKey) {
  console.error("usage: node audit.mjs <url> <api key> [<package dir>]");
  process.exit(2);
}

const require = createRequire(pathToFileURL(resolve(packageDir, "package.json")));
const { auditServer } = require("graphql-http");

function fetchFn(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${apiKey}`);
  return fetch(input, { ...init, headers });
}

const results = await auditServer({ url, fetchFn });
console.log(
  JSON.stringify(
    results.map((result) => ({
      id: result.id,
      name: result.name,
      status: result.status,
      reason: result.reason ?? null,
      httpStatus: result.response?.status ?? null,
    })),
  ),
);
