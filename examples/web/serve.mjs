#!/usr/bin/env node
// Serves the sign-in page and forwards the API's paths to the API, so that the page and the API
// share one origin (as CloudFront in front of both does in production; see README.md):
//
//   node examples/web/serve.mjs [--port 9001] [--api http://127.0.0.1:9000]
//
// The client is served at /client/ from clients/typescript/dist (build it first: scripts/dev
// does). config.js is written from the environment: CAPTCHA_PROVIDER (turnstile, hcaptcha or
// recaptcha), CAPTCHA_SITE_KEY, and CAPTCHA_SCRIPT_URL (the provider's script by default).
// Only the Node.js standard library is used.
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer, request as forward } from "node:http";
import { dirname, extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    port: { type: "string", default: process.env.WEB_PORT ?? "9001" },
    host: { type: "string", default: "127.0.0.1" },
    api: { type: "string", default: process.env.PHONE_AUTH_API_URL ?? "http://127.0.0.1:9000" },
  },
});
const api = new URL(values.api);
const roots = { "/client/": join(here, "../../clients/typescript/dist"), "/": here };
const API_PATHS = ["/auth/", "/.well-known/", "/hello"];
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".map": "application/json", ".png": "image/png" };
const SCRIPTS = {
  turnstile: "https://challenges.cloudflare.com/turnstile/v0/api.js?render=explicit",
  hcaptcha: "https://js.hcaptcha.com/1/api.js?render=explicit",
  recaptcha: "https://www.google.com/recaptcha/api.js?render=explicit",
};

function config() {
  const provider = process.env.CAPTCHA_PROVIDER;
  const captcha = provider
    ? { provider, siteKey: process.env.CAPTCHA_SITE_KEY ?? "", scriptUrl: process.env.CAPTCHA_SCRIPT_URL ?? SCRIPTS[provider] }
    : null;
  // apiUrl "": the API's paths are forwarded by this server (one origin, no CORS).
  return `window.PHONE_AUTH_CONFIG = ${JSON.stringify({ apiUrl: "", captcha })};\n`;
}

/** Forwards the request to the API as it came (method, path, headers, body). */
function proxy(request, response) {
  const upstream = forward(
    { host: api.hostname, port: api.port, method: request.method, path: request.url, headers: { ...request.headers, host: api.host } },
    (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    },
  );
  upstream.on("error", () => {
    response.writeHead(502, { "content-type": "application/json" });
    response.end(JSON.stringify({ error: "The API is not running (scripts/dev starts it)." }));
  });
  request.pipe(upstream);
}

async function file(request, response) {
  const path = decodeURIComponent(new URL(request.url, "http://page").pathname);
  const [prefix, root] = Object.entries(roots).find(([prefix]) => path.startsWith(prefix));
  const target = normalize(join(root, path.slice(prefix.length) || "index.html"));
  // Nothing outside the two folders.
  if (target !== root && !target.startsWith(root + sep)) return notFound(response);
  const found = await stat(target).catch(() => null);
  if (!found?.isFile()) return notFound(response);
  response.writeHead(200, { "content-type": TYPES[extname(target)] ?? "application/octet-stream", "cache-control": "no-cache" });
  createReadStream(target).pipe(response);
}

function notFound(response) {
  response.writeHead(404, { "content-type": "text/plain" });
  response.end("not found\n");
}

const server = createServer((request, response) => {
  if (API_PATHS.some((prefix) => request.url.startsWith(prefix))) return proxy(request, response);
  if (request.method !== "GET" && request.method !== "HEAD") return notFound(response);
  if (request.url === "/favicon.ico") {
    response.writeHead(204);
    return response.end();
  }
  if (request.url === "/config.js") {
    response.writeHead(200, { "content-type": "text/javascript", "cache-control": "no-cache" });
    return response.end(config());
  }
  file(request, response).catch(() => notFound(response));
});
server.listen(Number(values.port), values.host, () => {
  console.log(`sign-in page on http://${values.host}:${values.port}/ (API: ${api.origin})`);
});
