// Parse Mermaid diagrams with mermaid.parse (the library's own grammar), offline: jsdom provides
// the DOM mermaid expects. stdin: one diagram, or a JSON array of diagrams. stdout: one verdict
// {"ok": true, "type": ...} | {"ok": false, "error": ...} per diagram, as JSON (an array for an array).
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");

async function verdict(text) {
  try {
    const result = await mermaid.parse(text);
    return { ok: true, type: result.diagramType };
  } catch (e) {
    return { ok: false, error: String(e.message || e).split("\n").slice(0, 3).join(" ") };
  }
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const many = input.trimStart().startsWith("[");
const verdicts = [];
for (const text of many ? JSON.parse(input) : [input]) verdicts.push(await verdict(text));
console.log(JSON.stringify(many ? verdicts : verdicts[0]));
