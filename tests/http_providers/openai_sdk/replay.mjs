// Reads the fake server's Responses stream with the official `openai`
// package's own stream parser (client.responses.stream), which rebuilds
// the response from the events and throws on any event it cannot place.
// Prints one JSON line summarising what it rebuilt, for
// tests/http_providers/responses.rs to check. FAKE_URL: the fake's /v1.
import OpenAI from "openai";

const client = new OpenAI({ apiKey: "sk-replay", baseURL: process.env.FAKE_URL, maxRetries: 0 });

const tools = [{ type: "function", name: "read", parameters: { type: "object" }, strict: false }];

async function replay(prompt) {
  const stream = client.responses.stream({
    model: "o3",
    store: false,
    include: ["reasoning.encrypted_content"],
    reasoning: { effort: "low", summary: "auto" },
    input: [{ type: "message", role: "user", content: [{ type: "input_text", text: prompt }] }],
    tools,
  });
  const deltas = {};
  let last = -1;
  for await (const event of stream) {
    if (event.sequence_number !== last + 1) {
      throw new Error(`sequence_number ${event.sequence_number} after ${last}`);
    }
    last = event.sequence_number;
    if (event.type.endsWith(".delta")) deltas[event.type] = (deltas[event.type] ?? 0) + 1;
  }
  return { response: await stream.finalResponse(), deltas };
}

const full = await replay('hello there [[tool=read input={"path":"a.txt"} thinking=2]]');
const r = full.response;
const call = r.output.find((o) => o.type === "function_call");
const cut = await replay("long [[n=3 stop=length]]");
console.log(JSON.stringify({
  status: r.status,
  output_types: r.output.map((o) => o.type),
  text: r.output_text,
  arguments: call?.arguments,
  encrypted: r.output.find((o) => o.type === "reasoning")?.encrypted_content,
  deltas: full.deltas,
  incomplete: cut.response.incomplete_details?.reason,
}));
