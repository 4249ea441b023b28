"use strict";
const $ = (id) => document.getElementById(id);
const headers = () => {
  const h = {"Content-Type": "application/json", "Accept": "text/event-stream"};
  if ($("token").value) h["Authorization"] = "Bearer " + $("token").value;
  return h;
};
let loaded = false;
async function loadModel() {
  const r = await fetch("/v1/models", {headers: headers()});
  if (!r.ok) {
    const j = await r.json().catch(() => ({}));
    $("model").textContent = "model: " + r.status + " " + ((j.error && j.error.message) || r.statusText) + (r.status === 401 ? " (enter the token)" : "");
    return;
  }
  const m = (await r.json()).data[0];
  $("model").textContent = `${m.id}: ${m.variant}, ${m.image_size}×${m.image_size}×${m.channels}` + (m.guidance_ready ? ", guidance-ready" : "");
  const sel = $("class"), chosen = sel.value;
  sel.length = 1;
  for (const c of m.classes || []) { const o = document.createElement("option"); o.value = c; o.textContent = c; sel.append(o); }
  if ([...sel.options].some((o) => o.value === chosen)) sel.value = chosen;
  // The model's defaults, shown: what the server takes for a field left empty.
  const d = m.defaults || {};
  if (!loaded || $("guidance").dataset.auto === "1") { $("guidance").value = d.guidance; $("guidance").dataset.auto = "1"; }
  if (!loaded && d.steps) $("steps").value = d.steps;
  $("guide-label").hidden = !d.guide;
  $("interval").placeholder = d.guidance_interval || "none";
  $("guidance").disabled = !m.guidance_ready && !d.guide;
  $("guidance").title = m.guidance_ready ? "classifier-free guidance weight (the model's default: " + d.guidance + ")" : "the model has no null class: no guidance";
  loaded = true;
}
$("guidance").addEventListener("input", () => { $("guidance").dataset.auto = ""; });
$("token").addEventListener("change", loadModel);
$("f").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!loaded) await loadModel(); // a token typed and submitted at once
  const body = {class: $("class").value, n: +$("n").value, steps: +$("steps").value, seed: +$("seed").value};
  if ($("guidance").value !== "" && !$("guidance").disabled) body.guidance = +$("guidance").value; // else the model's default
  if ($("interval").value.trim() !== "") body.guidance_interval = $("interval").value.trim();
  if (!$("guide-label").hidden) body.guide = $("guide").checked;
  // Text nodes only: class names come from the model's author.
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text) e.textContent = text; return e; };
  const box = el("div", "req"), head = el("div"), st = el("span", "st", "queued"), bar = el("div"), imgs = el("div", "imgs");
  head.append(`${body.n} × class ${body.class}, guidance ${"guidance" in body ? body.guidance : "default"}, ${body.steps} steps, seed ${body.seed}: `, st);
  const track = el("div", "bar");
  track.append(bar);
  box.append(head, track, imgs);
  $("out").prepend(box);
  let r;
  try { r = await fetch("/v1/samples", {method: "POST", headers: headers(), body: JSON.stringify(body)}); }
  catch (err) { st.textContent = String(err); st.className = "err"; return; }
  if (!r.ok) { const j = await r.json().catch(() => ({})); st.textContent = r.status + ": " + ((j.error && j.error.message) || r.statusText); st.className = "err"; return; }
  const reader = r.body.getReader(), dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buf += dec.decode(value, {stream: true});
    let k;
    while ((k = buf.indexOf("\n\n")) >= 0) {
      const ev = buf.slice(0, k); buf = buf.slice(k + 2);
      const name = (ev.match(/^event: (.*)$/m) || [])[1], data = JSON.parse((ev.match(/^data: (.*)$/m) || [])[1] || "null");
      if (name === "progress") { bar.style.width = (100 * data.steps_done / data.steps_total) + "%"; st.textContent = `${data.images_done}/${data.images_total} images`; }
      if (name === "image") { const im = new Image(); im.src = "data:image/png;base64," + data.png; im.title = `#${data.index} ${data.class_name}`; im.dataset.class = data.class_name; imgs.append(im); }
      if (name === "done") { bar.style.width = "100%"; st.textContent = `${data.images} images`; box.dataset.done = "1"; }
      if (name === "error") { st.textContent = data.message; st.className = "err"; }
    }
  }
});
loadModel();
