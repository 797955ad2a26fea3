// Parse one Mermaid diagram from stdin with mermaid.parse (the library's own grammar), offline:
// jsdom provides the DOM mermaid expects. Prints {"ok": true, "type": ...} or {"ok": false, "error": ...}.
import { JSDOM } from "jsdom";
const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window; globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");
let text = "";
for await (const c of process.stdin) text += c;
try { const r = await mermaid.parse(text); console.log(JSON.stringify({ok: true, type: r.diagramType})); }
catch (e) { console.log(JSON.stringify({ok: false, error: String(e.message || e).split("\n").slice(0,3).join(" ")})); process.exitCode = 1; }
