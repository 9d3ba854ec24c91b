// The page of partner-serve: ask /suggest, show each suggestion where it goes, record the person's choices
// through /feedback, and compose the reply from the draft and the accepted edits. Text is only ever set
// with textContent (posts are untrusted), and nothing loads from anywhere but this server.
"use strict";

const NAMES = { ER: "emotional reaction", IP: "interpretation", EX: "exploration" };
const $ = (id) => document.getElementById(id);
// cards: [{s: suggestion, request, decided, li}]; accepted: [{id, action, position, sentence}] in the order accepted
const state = { sources: [], quick: [], draft: "", sentences: [], spans: null, cards: [], accepted: [] };

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function where(s, n) {
  if (s.action === "replace") return `Replace sentence ${s.position + 1}`;
  if (s.position === 0) return "Insert at the start";
  if (s.position >= n) return "Add at the end";
  return `Insert before sentence ${s.position + 1}`;
}

// The reply: the draft as the person wrote it (line breaks and all), with the accepted edits in their places.
function compose() {
  const n = state.sentences.length;
  const inserts = Array.from({ length: n + 1 }, () => []);
  const replaced = {};
  for (const a of state.accepted) {
    if (a.action === "insert") inserts[Math.min(a.position, n)].push(a.sentence.trim());
    else replaced[a.position] = a.sentence.trim();  // two accepted replacements of one sentence: the later wins
  }
  if (!state.spans) {  // sentences not found verbatim in the draft: join them with spaces
    const out = [];
    for (let i = 0; i <= n; i++) {
      out.push(...inserts[i]);
      if (i < n) out.push(i in replaced ? replaced[i] : state.sentences[i]);
    }
    return out.map((t) => t.trim()).filter(Boolean).join(" ");
  }
  const text = state.draft;
  let out = "", at = 0;
  state.spans.forEach(([start, end], i) => {
    out += text.slice(at, start);
    out += inserts[i].map((t) => t + " ").join("");
    out += i in replaced ? replaced[i] : text.slice(start, end);
    at = end;
  });
  out += inserts[n].map((t) => " " + t).join("");
  return out + text.slice(at);
}

// The draft around the edit (a sentence either side), the new sentence marked where it goes.
function preview(s) {
  const p = el("p", "preview");
  const n = state.sentences.length;
  const mark = () => el("ins", null, s.sentence);
  const from = Math.max(0, s.position - 1);
  const to = Math.min(n, s.action === "replace" ? s.position + 2 : s.position + 1);
  if (from > 0) p.append("… ");
  for (let i = from; i < to; i++) {
    const t = state.sentences[i];
    if (s.action === "insert" && s.position === i) p.append(mark(), " ");
    if (s.action === "replace" && s.position === i) p.append(el("del", null, t), " ", mark(), " ");
    else p.append(t, " ");
  }
  if (s.action === "insert" && s.position >= n) p.append(mark());
  if (to < n) p.append("…");
  return p;
}

async function post(path, body) {
  const res = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
                                  body: JSON.stringify(body) });
  const data = await res.json().catch(() => ({ error: { message: `HTTP ${res.status}` } }));
  if (!res.ok) throw new Error(data.error ? data.error.message : `HTTP ${res.status}`);
  return data;
}

function decide(s, c, decision, sentence) {
  const li = c.li;
  c.decided = true;
  li.classList.remove("open");
  li.classList.add(decision === "dismissed" ? "dismissed" : "accepted");
  li.querySelectorAll("button, textarea").forEach((b) => { b.disabled = true; });
  li.querySelector(".state").textContent = decision;
  if (decision !== "dismissed") {
    state.accepted.push({ id: s.id, action: s.action, position: s.position, sentence });
    li.querySelector(".sentence").textContent = sentence;
    $("final").value = compose();
  }
  const body = { request_id: c.request, suggestion_id: s.id, decision };
  if (decision === "edited") body.sentence = sentence;
  post("/feedback", body).catch((e) => { $("status").textContent = `feedback not recorded: ${e.message}`; });
}

function card(s, c) {
  const li = el("li", "open");
  li.id = `s-${s.id}`;
  const n = state.sentences.length;
  li.append(el("div", "where", where(s, n)));
  li.append(el("p", "sentence", s.sentence));
  li.append(preview(s));
  const mech = s.mechanism ? `adds ${NAMES[s.mechanism] || s.mechanism}` : "no EPITOME mechanism";
  const gain = `${s.gain >= 0 ? "+" : ""}${s.gain.toFixed(2)}`;
  li.append(el("div", "meta", `predicted gain ${gain} (readers prefer it ${Math.round(100 * s.win_prob)} %) · ` +
                               `${mech} · from ${s.sources.join(", ")}`));
  const row = el("div", "row");
  const accept = el("button", "accept", "Accept");
  const edit = el("button", "edit", "Edit");
  const dismiss = el("button", "dismiss", "Dismiss");
  [accept, edit, dismiss].forEach((b) => { b.type = "button"; });
  accept.id = `accept-${s.id}`; edit.id = `edit-${s.id}`; dismiss.id = `dismiss-${s.id}`;
  row.append(accept, edit, dismiss, el("span", "state"));
  li.append(row);
  accept.addEventListener("click", () => decide(s, c, "accepted", s.sentence));
  dismiss.addEventListener("click", () => decide(s, c, "dismissed", s.sentence));
  edit.addEventListener("click", () => {
    const box = el("textarea");
    box.id = `text-${s.id}`;
    box.rows = 2;
    box.value = s.sentence;
    const use = el("button", "use", "Use my version");
    use.type = "button";
    use.id = `use-${s.id}`;
    use.addEventListener("click", () => {
      const t = box.value.trim();
      if (t) decide(s, c, t === s.sentence ? "accepted" : "edited", t);
    });
    edit.disabled = true;
    li.insertBefore(box, row);
    row.prepend(use);
    box.focus();
  });
  return li;
}

function same(a, b) {
  return a.action === b.action && a.position === b.position && a.sentence.trim() === b.sentence.trim();
}

// Show a ranking: cards already decided stay; the undecided ones make way for the new ranking, up to k in all.
function show(data, k) {
  const list = $("list");
  const kept = state.cards.filter((c) => c.decided);
  state.cards.filter((c) => !c.decided).forEach((c) => c.li.remove());
  state.cards = kept;
  for (const s of data.suggestions) {
    if (state.cards.length >= k) break;
    if (state.cards.some((c) => same(c.s, s))) continue;
    const c = { s, request: data.request_id, decided: false };
    c.li = card(s, c);
    list.append(c.li);
    state.cards.push(c);
  }
  $("none").hidden = state.cards.length > 0;
}

async function suggest(ev) {
  ev.preventDefault();
  const seeker = $("seeker").value, draft = $("draft").value;
  const status = $("status");
  status.className = "";
  if (!seeker.trim() || !draft.trim()) {
    status.className = "error";
    status.textContent = "Paste both the post and your draft.";
    return;
  }
  const k = Number($("k").value) || 3;
  $("suggest").disabled = true;
  const started = performance.now();
  const secs = () => ((performance.now() - started) / 1000).toFixed(1);
  // quick sources first (when the server has both kinds), so the first suggestions come at once
  const quick = state.quick.length && state.quick.length < state.sources.length;
  const stages = quick ? [state.quick, null] : [null];
  $("list").replaceChildren();
  state.cards = [];
  state.accepted = [];
  try {
    for (const [i, sources] of stages.entries()) {
      const more = i < stages.length - 1;
      status.textContent = i === 0 ? "Thinking…" : `${state.cards.length} suggestion(s) in ${secs()} s · looking for more…`;
      const body = { seeker_post: seeker, draft, k };
      if (sources) body.sources = sources;
      const data = await post("/suggest", body);
      if (i === 0) {
        state.sentences = data.draft_sentences;
        state.spans = data.draft_spans;
        state.draft = data.draft;
        const risk = $("risk");
        risk.hidden = !data.risk;
        risk.textContent = data.risk ? data.risk.message : "";
        $("final").value = compose();
        $("copied").textContent = "";
        $("results").hidden = false;
      }
      show(data, k);
      $("none").hidden = more || state.cards.length > 0;
      status.textContent = `${state.cards.length} suggestion(s) in ${secs()} s` + (more ? " · looking for more…" : "");
    }
    status.dataset.done = "1";
  } catch (e) {
    status.className = "error";
    status.textContent = e.message;
  } finally {
    $("suggest").disabled = false;
  }
}

async function copy() {
  const text = $("final").value;
  try {
    await navigator.clipboard.writeText(text);
  } catch (e) {  // no clipboard permission (some browsers, plain http): copy the selection instead
    $("final").select();
    document.execCommand("copy");
  }
  $("copied").textContent = "Copied.";
}

document.addEventListener("DOMContentLoaded", () => {
  fetch("/health").then((r) => r.json()).then((h) => {
    state.sources = h.suggester.sources;
    state.quick = h.suggester.quick || [];
  }).catch(() => {});
  $("form").addEventListener("submit", suggest);
  $("copy").addEventListener("click", copy);
});
