// Reads the fake server's Gemini stream with Google's official
// `@google/genai` package (ai.models.generateContentStream): its own SSE
// reader and response types, which throw on a chunk they cannot parse.
// Prints one JSON line summarising what it read, for
// tests/http_providers/gemini.rs to check. FAKE_URL: the fake's root.
import { GoogleGenAI } from "@google/genai";

const ai = new GoogleGenAI({
  apiKey: "AIza-replay",
  // The version rpc speaks (the package defaults to v1 here).
  httpOptions: { baseUrl: process.env.FAKE_URL, apiVersion: "v1beta" },
});

const tools = [{
  functionDeclarations: [{
    name: "read",
    description: "read a file",
    parameters: { type: "object", properties: { path: { type: "string" } } },
  }],
}];

async function replay(prompt) {
  const stream = await ai.models.generateContentStream({
    model: "gemini-2.5-flash",
    contents: [{ role: "user", parts: [{ text: prompt }] }],
    config: { tools, thinkingConfig: { thinkingBudget: 1024, includeThoughts: true } },
  });
  const out = { text: "", thoughts: "", calls: [], signature: null, finish: null, usage: null };
  for await (const chunk of stream) {
    const candidate = chunk.candidates?.[0];
    for (const part of candidate?.content?.parts ?? []) {
      if (part.thought) out.thoughts += part.text ?? "";
      else if (part.text) out.text += part.text;
      if (part.thoughtSignature) out.signature = part.thoughtSignature;
    }
    for (const call of chunk.functionCalls ?? []) out.calls.push({ name: call.name, args: call.args });
    if (candidate?.finishReason) out.finish = candidate.finishReason;
    out.usage = chunk.usageMetadata ?? out.usage;
  }
  return out;
}

const full = await replay('hello there [[tool=read input={"path":"a.txt"} thinking=2]]');
const cut = await replay("long [[n=3 stop=max_tokens]]");
let errorStatus = null;
try {
  await replay("[[fail=429 fail_times=9 retry_after=0]]");
} catch (e) {
  errorStatus = e.status ?? null;
}
console.log(JSON.stringify({
  text: full.text,
  thoughts: full.thoughts,
  calls: full.calls,
  signature: full.signature,
  finish: full.finish,
  usage: full.usage,
  cut_finish: cut.finish,
  error_status: errorStatus,
}));
