// cvpipe upload page: pick, drop or paste images; each goes to the prediction API on its
// own and gets a card with its preview, the top classes as bars, or the API's error message.
"use strict";

(function () {
  const root = document.body.dataset.apiRoot || "";
  const TOKEN_KEY = "cvpipe.apiToken";
  const MAX_FILES = 12;

  const $ = (id) => document.getElementById(id);
  const modelSelect = $("model");
  const modelInfo = $("model-info");
  const problems = $("model-problems");
  const topKInput = $("top-k");
  const tokenBox = $("token-box");
  const tokenInput = $("token");
  const tokenState = $("token-state");
  const fileInput = $("file");
  const drop = $("drop");
  const errorBox = $("error");
  const statusLine = $("status");
  const results = $("results");
  const template = $("result-template");

  let defaultModel = null;
  let lastFiles = [];
  let previews = [];

  // ------------------------------------------------------------------ helpers
  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function setStatus(message) {
    statusLine.textContent = message || "";
  }

  function authHeaders() {
    const token = tokenInput.value.trim();
    return token ? { Authorization: "Bearer " + token } : {};
  }

  function updateTokenState() {
    tokenState.textContent = tokenInput.value.trim() ? "(set)" : "(not set)";
  }

  /** The API's error message in words, whatever the server sent back. */
  async function errorMessage(response) {
    let text = "";
    try {
      text = await response.text();
      const body = JSON.parse(text);
      if (body && body.error) {
        const e = body.error;
        return typeof e === "string" ? e : (e.message || e.code || JSON.stringify(e));
      }
    } catch (_) {
      // not JSON: a proxy or the server's own error page
    }
    const reason = response.statusText ? " " + response.statusText : "";
    const snippet = text && text.length < 200 && !/<html/i.test(text) ? ": " + text.trim() : "";
    return "The server answered " + response.status + reason + snippet;
  }

  function needsToken(response) {
    if (response.status !== 401) return false;
    tokenBox.open = true;
    tokenInput.focus();
    return true;
  }

  // ------------------------------------------------------------------ models
  function modelList(body) {
    const items = Array.isArray(body) ? body : (body.models || body.data || []);
    return items.map((m) => (typeof m === "string" ? { name: m } : m));
  }

  function isDefault(model, body) {
    return model.default === true || model.is_default === true ||
      (body && !Array.isArray(body) && (body.default === model.name || body.default_model === model.name));
  }

  function failed(model) {
    const status = String(model.status || model.state || "").toLowerCase();
    return Boolean(model.error) || status === "error" || status === "failed" || model.loaded === false;
  }

  function errorText(model) {
    const err = model.error && (model.error.message || model.error);
    return err || "it failed to load";
  }

  /** One line about a model: version, input, classes, accuracy (from GET /v1/models/<name>). */
  function describe(model, detail) {
    if (!model) return "";
    if (failed(model)) return "Not available: " + errorText(model);
    const info = Object.assign({}, model, detail || {});
    const parts = [];
    if (info.version) parts.push("version " + info.version);
    const input = info.input || {};
    if (input.width && input.height) {
      parts.push("input " + input.width + "×" + input.height + (input.color_mode === "RGB" ? " color" : " grayscale"));
    }
    if (Array.isArray(info.classes)) parts.push(info.classes.length + " classes");
    const metrics = info.metrics || {};
    if (typeof metrics.test_accuracy === "number") {
      parts.push("test accuracy " + (100 * metrics.test_accuracy).toFixed(1) + "%");
    }
    return parts.join(" · ");
  }

  const details = {};

  async function modelDetail(name) {
    if (!name || details[name]) return details[name];
    try {
      const response = await fetch(root + "/v1/models/" + encodeURIComponent(name), { headers: authHeaders() });
      if (response.ok) details[name] = await response.json();
    } catch (_) {
      // the one-line description is a nicety; the summary from the list stays
    }
    return details[name];
  }

  let models = [];

  async function loadModels() {
    let response;
    try {
      response = await fetch(root + "/v1/models", { headers: authHeaders() });
    } catch (err) {
      modelSelect.innerHTML = "<option value=''>(server unreachable)</option>";
      showError("Could not reach the server to list the models: " + err.message);
      return;
    }
    if (!response.ok) {
      const message = await errorMessage(response);
      modelSelect.innerHTML = "<option value=''>(default model)</option>";
      if (needsToken(response)) {
        showError(message + " — enter the API token below the model list.");
      } else {
        showError("Could not list the models: " + message);
      }
      return;
    }
    const body = await response.json();
    models = modelList(body);
    modelSelect.innerHTML = "";
    defaultModel = null;
    for (const model of models) {
      const option = document.createElement("option");
      option.value = model.name;
      const def = isDefault(model, body);
      if (def && !failed(model)) defaultModel = model.name;
      option.textContent = model.name + (def ? " (default)" : "") + (failed(model) ? " — failed to load" : "");
      option.disabled = failed(model);
      modelSelect.appendChild(option);
    }
    if (!models.length) {
      modelSelect.innerHTML = "<option value=''>(no model loaded)</option>";
      modelInfo.textContent = "This server has no model loaded yet; predictions will fail until one is.";
      return;
    }
    const usable = models.filter((m) => !failed(m));
    modelSelect.value = defaultModel || (usable[0] && usable[0].name) || "";
    showModelInfo();
    showProblems();
    if (errorBox.textContent.startsWith("Could not") || /token/i.test(errorBox.textContent)) showError("");
  }

  function showProblems() {
    const broken = models.filter(failed);
    problems.hidden = !broken.length;
    problems.querySelector("summary").textContent = broken.length === 1
      ? "1 model could not be loaded: " + broken[0].name
      : broken.length + " models could not be loaded: " + broken.map((m) => m.name).join(", ");
    const list = problems.querySelector("ul");
    list.innerHTML = "";
    for (const model of broken) {
      const item = document.createElement("li");
      item.textContent = model.name + ": " + errorText(model);
      list.appendChild(item);
    }
  }

  async function showModelInfo() {
    const name = modelSelect.value;
    const current = models.find((m) => m.name === name);
    modelInfo.textContent = describe(current);
    const detail = current && !failed(current) ? await modelDetail(name) : null;
    if (detail && modelSelect.value === name) modelInfo.textContent = describe(current, detail);
  }

  // ------------------------------------------------------------------ predictions
  function predictUrl() {
    const name = modelSelect.value;
    const k = Math.max(1, Math.min(20, parseInt(topKInput.value, 10) || 5));
    const path = name && name !== defaultModel
      ? "/v1/models/" + encodeURIComponent(name) + "/predict"
      : "/predict";
    return root + path + "?top_k=" + k;
  }

  function formatScore(score, probability) {
    if (typeof score !== "number" || !isFinite(score)) return "—";
    return probability ? (100 * score).toFixed(1) + "%" : score.toFixed(3);
  }

  function renderPrediction(card, answer, prediction) {
    card.classList.remove("pending");
    const label = card.querySelector(".label");
    label.textContent = prediction.label;
    const top = prediction.top_k && prediction.top_k.length
      ? prediction.top_k
      : [{ label: prediction.label, score: prediction.score }];
    const scores = top.map((t) => t.score);
    const probability = prediction.score_kind
      ? prediction.score_kind === "probability"
      : scores.every((s) => s >= 0 && s <= 1);
    const lo = Math.min(0, ...scores);
    const hi = Math.max(...scores);
    const meta = card.querySelector(".meta");
    const bits = ["model " + answer.model + (answer.version ? " · version " + answer.version : "")];
    if (typeof answer.took_ms === "number") bits.push(answer.took_ms.toFixed(1) + " ms");
    if (!probability) bits.push("scores are margins, not probabilities");
    meta.textContent = bits.join(" · ");
    const list = card.querySelector(".bars");
    list.innerHTML = "";
    top.forEach((t, i) => {
      const row = document.createElement("li");
      row.className = "bar-row" + (i === 0 ? " best" : "");
      const name = document.createElement("span");
      name.className = "bar-name";
      name.textContent = t.label;
      name.title = t.label;
      const track = document.createElement("span");
      track.className = "bar-track";
      track.setAttribute("aria-hidden", "true");
      const fill = document.createElement("span");
      fill.className = "bar-fill";
      fill.style.display = "block";
      const fraction = probability ? t.score : (hi > lo ? (t.score - lo) / (hi - lo) : 1);
      requestAnimationFrame(() => { fill.style.width = (100 * Math.max(0, Math.min(1, fraction))).toFixed(1) + "%"; });
      track.appendChild(fill);
      const value = document.createElement("span");
      value.className = "bar-value";
      value.textContent = formatScore(t.score, probability);
      row.append(name, track, value);
      list.appendChild(row);
    });
  }

  function renderError(card, message) {
    card.classList.remove("pending");
    card.querySelector(".label").textContent = "No prediction";
    card.querySelector(".meta").textContent = "";
    const box = card.querySelector(".card-error");
    box.textContent = message;
    box.hidden = false;
  }

  function newCard(file) {
    const card = template.content.firstElementChild.cloneNode(true);
    card.classList.add("pending");
    const img = card.querySelector("img");
    const url = URL.createObjectURL(file);
    previews.push(url);
    img.src = url;
    img.alt = "Preview of " + (file.name || "the pasted image");
    img.addEventListener("error", () => {
      img.hidden = true;
      card.querySelector(".no-preview").hidden = false;
    });
    card.querySelector(".file-name").textContent = (file.name || "pasted image") + " · " + formatBytes(file.size);
    card.querySelector(".label").textContent = "Classifying…";
    return card;
  }

  function formatBytes(n) {
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KB";
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  async function classifyOne(file, card) {
    const form = new FormData();
    form.append("image", file, file.name || "image");
    let response;
    try {
      response = await fetch(predictUrl(), { method: "POST", body: form, headers: authHeaders() });
    } catch (err) {
      renderError(card, "Could not reach the server: " + err.message);
      return false;
    }
    if (!response.ok) {
      const message = await errorMessage(response);
      renderError(card, message);
      if (needsToken(response)) showError(message + " — enter the API token, then choose the image again.");
      return false;
    }
    const answer = await response.json();
    const prediction = (answer.predictions || [])[0];
    if (!prediction) {
      renderError(card, "The server answered without a prediction.");
      return false;
    }
    if (prediction.error) {
      renderError(card, prediction.error.message || String(prediction.error));
      return false;
    }
    renderPrediction(card, answer, prediction);
    return true;
  }

  async function classify(files) {
    files = Array.from(files || []);
    if (!files.length) return;
    showError("");
    if (files.length > MAX_FILES) {
      showError("Showing the first " + MAX_FILES + " of " + files.length + " files.");
      files = files.slice(0, MAX_FILES);
    }
    lastFiles = files;
    previews.forEach((u) => URL.revokeObjectURL(u));
    previews = [];
    results.innerHTML = "";
    const cards = files.map((f) => {
      const card = newCard(f);
      results.appendChild(card);
      return card;
    });
    setStatus("Classifying " + files.length + (files.length === 1 ? " image…" : " images…"));
    let ok = 0;
    for (let i = 0; i < files.length; i++) {
      if (await classifyOne(files[i], cards[i])) ok++;
    }
    setStatus(files.length === 1
      ? (ok ? "Done." : "The image could not be classified.")
      : ok + " of " + files.length + " images classified.");
  }

  // ------------------------------------------------------------------ wiring
  let appliedToken = null;

  function applyToken() {
    const token = tokenInput.value.trim();
    if (token === appliedToken) return;
    appliedToken = token;
    try {
      if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) {
      // storage disabled: the token lives in the field only
    }
    updateTokenState();
    loadModels();
  }

  $("settings").addEventListener("submit", (event) => {  // "Use token", or Enter in a field
    event.preventDefault();
    applyToken();
  });
  fileInput.addEventListener("change", () => {
    classify(fileInput.files);
    fileInput.value = "";  // choosing the same file again still fires "change"
  });

  ["dragenter", "dragover"].forEach((type) => drop.addEventListener(type, (event) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    drop.classList.add("dragging");
  }));
  ["dragleave", "dragend"].forEach((type) => drop.addEventListener(type, () => drop.classList.remove("dragging")));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("dragging");
    classify(event.dataTransfer.files);
  });
  // A file dropped beside the zone would make the browser navigate away from the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  document.addEventListener("paste", (event) => {
    const files = Array.from(event.clipboardData ? event.clipboardData.files : []);
    if (files.length) classify(files);
  });

  modelSelect.addEventListener("change", () => {
    showModelInfo();
    if (lastFiles.length) classify(lastFiles);
  });
  topKInput.addEventListener("change", () => { if (lastFiles.length) classify(lastFiles); });

  try {
    tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || "";
  } catch (_) {
    // see applyToken
  }
  appliedToken = tokenInput.value.trim();
  updateTokenState();
  tokenInput.addEventListener("change", applyToken);

  loadModels();
})();
