// Probot's own server with a pull_request handler that stores nothing: the peer the intake
// benchmark measures Stoplight against. PROBOT_HOME is the directory Probot was installed in;
// WEBHOOK_SECRET, PORT and PRIVATE_KEY come from the environment.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const entry = join(process.env.PROBOT_HOME, "node_modules", "probot", "lib", "index.js");
const { Probot, Server } = await import(pathToFileURL(entry).href);

const server = new Server({
  host: "127.0.0.1",
  port: Number(process.env.PORT),
  Probot: Probot.defaults({
    appId: 1,
    privateKey: process.env.PRIVATE_KEY,
    secret: process.env.WEBHOOK_SECRET,
  }),
});
await server.load((app) => {
  app.on("pull_request", async () => {});
});
await server.start();
