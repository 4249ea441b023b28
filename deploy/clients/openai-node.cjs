// Drives condiff-run serve with OpenAI's official Node SDK (npm openai) as
// OpenAI's own examples call it, and prints what the SDK made of each
// answer as one JSON object (deploy's TestOpenAINode checks it).
//
//   NODE_PATH=…/node_modules node openai-node.cjs http://127.0.0.1:8080/v1 TOKEN CLASS
const OpenAI = require("openai");

(async () => {
  const [baseURL, apiKey, klass] = process.argv.slice(2);
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
  const out = {};
  const caught = async (name, f) => {
    try {
      out[name] = { ok: await f() };
    } catch (e) {
      out[name] = { error: e.constructor.name, status: e.status, type: e.type, param: e.param, code: e.code, message: e.error?.message ?? e.message };
    }
  };
  await caught("generate", async () => {
    const r = await client.images.generate({ model: "dall-e-2", prompt: klass, n: 2, size: "auto", quality: "standard", style: "natural", response_format: "b64_json", user: "u-1", steps: 4 });
    return { created: r.created, n: r.data.length, png: r.data.map((d) => Buffer.from(d.b64_json, "base64").subarray(1, 4).toString()) };
  });
  await caught("list", async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    return ids;
  });
  await caught("retrieve", async () => {
    const m = await client.models.retrieve(out.list.ok?.[0] ?? "none");
    return { id: m.id, object: m.object, owned_by: m.owned_by };
  });
  await caught("unknown_model", () => client.models.retrieve("dall-e-3"));
  await caught("bad_prompt", () => client.images.generate({ prompt: "a zebra", steps: 4 }));
  await caught("bad_size", () => client.images.generate({ prompt: klass, size: "1024x1024" }));
  await caught("wrong_key", () => new OpenAI({ baseURL, apiKey: "not-the-token", maxRetries: 0 }).models.list());
  process.stdout.write(JSON.stringify(out) + "\n");
})().catch((e) => { console.error(e); process.exit(1); });
