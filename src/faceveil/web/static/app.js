// faceveil web app: pick files, send them as one job, follow its progress, compare, download.
// No libraries and nothing from elsewhere. Names from files are only ever set as text.
"use strict";

(() => {
  const $ = (selector, root = document) => root.querySelector(selector);

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const basename = (path) => String(path).split("/").pop();

  function size(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1 << 20) return `${(bytes / 1024).toFixed(0)} KB`;
    if (bytes < 1 << 30) return `${(bytes / (1 << 20)).toFixed(1)} MB`;
    return `${(bytes / (1 << 30)).toFixed(2)} GB`;
  }

  // ---- the access token: from #token=... (then removed from the address bar) or a prompt

  const TOKEN_KEY = "faceveil-token";
  let token = (() => {
    const match = location.hash.match(/(?:^#|&)token=([^&]+)/);
    if (match) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  })();

  function withToken(headers = {}) {
    if (token) headers.Authorization = `Bearer ${token}`;
    return headers;
  }

  function askToken() {
    const given = window.prompt("This faceveil server needs its access token:");
    if (!given) return false;
    token = given.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    return true;
  }

  async function api(path, options = {}, retry = true) {
    const response = await fetch(path, { ...options, cache: "no-store", headers: withToken(options.headers || {}) });
    if (response.status === 401 && retry && askToken()) return api(path, options, false);
    return response;
  }

  async function message(response) {
    try {
      const body = await response.json();
      return body.message || `${response.status} ${response.statusText}`;
    } catch {
      return `${response.status} ${response.statusText}`;
    }
  }

  function notice(text, isError = false) {
    const node = $("#notice");
    node.textContent = text;
    node.classList.toggle("error", isError);
  }

  // ---- options, built from /api/options (the same registries as the command line)

  let specs = [];
  let limits = {};

  async function loadOptions() {
    const response = await api("/api/options");
    if (!response.ok) {
      notice(await message(response), true);
      return;
    }
    const body = await response.json();
    specs = body.options;
    limits = body.limits;
    $("#version").textContent = `faceveil ${body.version}`;
    if (limits.job_ttl) {
      $("#retention").textContent = "Uploads are deleted as soon as they are processed; results when you " +
        "download the zip, press Clear or close this page, and otherwise " +
        `${Math.round(limits.job_ttl / 60)} minutes after their job was last used.`;
    }
    const form = $("#options");
    for (const spec of specs) {
      if (spec.kind === "multi" && !spec.choices.length) continue; // no people gallery on this server
      let input;
      if (spec.kind === "choice" || spec.kind === "multi") {
        input = el("select", { name: spec.name, multiple: spec.kind === "multi" });
        for (const choice of spec.choices) {
          const label = choice.available ? choice.label : `${choice.label} (not installed)`;
          input.append(el("option", { value: choice.value, title: choice.help || null, disabled: !choice.available, text: label }));
        }
        if (spec.kind === "choice") input.value = spec.default;
      } else if (spec.kind === "color") {
        input = el("input", { type: "color", name: spec.name, value: spec.default });
      } else {
        input = el("input", { type: "number", name: spec.name, min: spec.min, max: spec.max, step: spec.step, value: spec.default });
      }
      const wrap = el("label", { class: spec.kind === "multi" ? "opt wide" : "opt", "data-name": spec.name, title: spec.help || null },
        el("span", { text: spec.label }), input);
      form.append(wrap);
    }
    form.addEventListener("change", showRelevant);
    form.addEventListener("submit", (event) => event.preventDefault());
    showRelevant();
    refreshStart();
  }

  function showRelevant() {
    const form = $("#options");
    for (const spec of specs) {
      const wrap = form.querySelector(`[data-name="${spec.name}"]`);
      if (!wrap || !spec.when) continue;
      wrap.hidden = !Object.entries(spec.when).every(([name, values]) => values.includes(form.elements[name]?.value));
    }
  }

  function appendOptions(data) {
    const form = $("#options");
    for (const spec of specs) {
      const wrap = form.querySelector(`[data-name="${spec.name}"]`);
      if (!wrap || wrap.hidden) continue;
      const input = form.elements[spec.name];
      if (spec.kind === "multi") {
        for (const option of input.selectedOptions) data.append(spec.name, option.value);
      } else if (input.value !== "") {
        data.append(spec.name, input.value);
      }
    }
  }

  // ---- picking files

  const pending = [];

  function addFiles(files) {
    for (const file of files) pending.push(file);
    renderPicked();
  }

  function renderPicked() {
    const list = $("#picked");
    list.replaceChildren(...pending.map((file, index) => el("li", {},
      el("span", { class: "name", text: file.name, title: file.name }),
      el("span", { class: "size", text: size(file.size) }),
      el("button", { type: "button", title: `Remove ${file.name}`, "aria-label": `Remove ${file.name}`, text: "\u00d7",
        onclick: (event) => { event.stopPropagation(); pending.splice(index, 1); renderPicked(); } }))));
    refreshStart();
  }

  function refreshStart() {
    const total = pending.reduce((sum, file) => sum + file.size, 0);
    const tooBig = limits.max_upload_bytes && total > limits.max_upload_bytes;
    $("#start").disabled = !pending.length || !specs.length || tooBig;
    if (tooBig) notice(`${size(total)} is over this server's limit of ${size(limits.max_upload_bytes)} per upload.`, true);
    else if (pending.length) notice(`${pending.length} file(s), ${size(total)}`);
    else notice("");
  }

  function setUpPicking() {
    const drop = $("#drop");
    const input = $("#files");
    $("#choose").addEventListener("click", (event) => { event.stopPropagation(); input.click(); });
    drop.addEventListener("click", () => input.click());
    drop.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); }
    });
    input.addEventListener("change", () => { addFiles(input.files); input.value = ""; });
    for (const type of ["dragenter", "dragover"]) {
      drop.addEventListener(type, (event) => { event.preventDefault(); drop.classList.add("over"); });
    }
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      addFiles(event.dataTransfer.files);
    });
    // Files dropped next to the zone must not make the browser open them and leave the page.
    window.addEventListener("dragover", (event) => event.preventDefault());
    window.addEventListener("drop", (event) => event.preventDefault());
  }

  // ---- a zip's entry, read in the browser, for the "before" side of the comparison

  async function zipEntry(file, position) {
    const tailLength = Math.min(file.size, 65557);
    const tail = new DataView(await file.slice(file.size - tailLength).arrayBuffer());
    let end = -1;
    for (let i = tailLength - 22; i >= 0; i--) {
      if (tail.getUint32(i, true) === 0x06054b50) { end = i; break; }
    }
    if (end < 0) return null;
    const count = tail.getUint16(end + 10, true);
    const directorySize = tail.getUint32(end + 12, true);
    const directoryOffset = tail.getUint32(end + 16, true);
    if (count === 0xffff || directoryOffset === 0xffffffff) return null; // zip64: no preview
    const directory = new DataView(await file.slice(directoryOffset, directoryOffset + directorySize).arrayBuffer());
    let at = 0;
    for (let i = 0; i < count; i++) {
      if (directory.getUint32(at, true) !== 0x02014b50) return null;
      const method = directory.getUint16(at + 10, true);
      const compressed = directory.getUint32(at + 20, true);
      const skip = directory.getUint16(at + 28, true) + directory.getUint16(at + 30, true) + directory.getUint16(at + 32, true);
      const local = directory.getUint32(at + 42, true);
      if (i === position) {
        const header = new DataView(await file.slice(local, local + 30).arrayBuffer());
        const start = local + 30 + header.getUint16(26, true) + header.getUint16(28, true);
        const raw = file.slice(start, start + compressed);
        if (method === 0) return raw;
        if (method === 8 && "DecompressionStream" in window) {
          return new Response(raw.stream().pipeThrough(new DecompressionStream("deflate-raw"))).blob();
        }
        return null;
      }
      at += 46 + skip;
    }
    return null;
  }

  // ---- one job: its card, progress, results, comparison, downloads

  const cards = new Set();

  class JobCard {
    constructor(files) {
      this.files = files;
      this.urls = [];
      this.results = new Map(); // file index -> {url, blob}
      this.rows = new Map();
      this.originals = new Map();
      this.shown = null;
      this.gone = false;
      this.deleted = false;
      const count = files.length === 1 ? files[0].name : `${files.length} files`;
      this.bar = el("div", { class: "bar" }, el("div"));
      this.state = el("span", { class: "job-state", text: "Uploading…" });
      this.zipButton = el("button", { type: "button", class: "secondary", disabled: true, text: "Download all (.zip)",
        onclick: () => this.downloadAll() });
      this.clearButton = el("button", { type: "button", class: "secondary", text: "Clear", onclick: () => this.clear() });
      this.list = el("ul", { class: "files" });
      this.skipped = el("p", { class: "skipped", hidden: true });
      this.compare = el("div", { class: "compare-area" });
      this.root = el("article", { class: "job" },
        el("div", { class: "job-head" }, el("span", { class: "job-title", text: count }), this.state,
          this.zipButton, this.clearButton),
        this.bar, this.list, this.skipped, this.compare);
      $("#jobs").prepend(this.root);
      cards.add(this);
    }

    setBar(bar, fraction, state) {
      bar.firstChild.style.width = `${Math.round(Math.max(0, Math.min(1, fraction)) * 100)}%`;
      bar.classList.toggle("done", state === "done");
      bar.classList.toggle("failed", state === "failed");
    }

    uploading(fraction) {
      this.state.textContent = `Uploading… ${Math.round(fraction * 100)}%`;
      this.setBar(this.bar, fraction * 0.05, "");
    }

    failed(text) {
      this.state.textContent = text;
      this.state.classList.add("error");
      this.setBar(this.bar, 1, "failed");
    }

    async follow(status) {
      this.id = status.id;
      this.root.dataset.job = status.id;
      this.update(status);
      while (!this.gone && (status.state === "queued" || status.state === "running")) {
        await sleep(400);
        const response = await api(`/api/jobs/${status.id}`);
        if (!response.ok) { this.failed(await message(response)); return; }
        status = await response.json();
        this.update(status);
      }
    }

    update(status) {
      if (this.gone) return;
      const done = status.files.filter((f) => f.state === "done").length;
      const failed = status.files.filter((f) => f.state === "failed").length;
      const words = { queued: "Waiting for a free worker…", running: "Working…", cancelled: "Cancelled",
        failed: "Nothing could be anonymized", done: `Done: ${done} of ${status.files_total} file(s), ${status.summary}` };
      this.state.textContent = words[status.state] + (failed && status.state === "done" ? `, ${failed} failed` : "");
      this.state.classList.toggle("error", status.state === "failed");
      this.root.dataset.state = status.state;
      this.setBar(this.bar, status.progress, status.state);
      this.zipButton.disabled = status.state !== "done" || this.deleted;
      for (const file of status.files) this.updateFile(file);
      const notes = [...status.rejected.map((r) => `${r.name}: ${r.error}`), ...status.skipped.map((s) => `${s.name}: ${s.reason}`)];
      this.skipped.hidden = !notes.length;
      this.skipped.textContent = notes.length ? `Left out: ${notes.join("; ")}` : "";
    }

    updateFile(file) {
      let row = this.rows.get(file.index);
      if (!row) {
        row = {
          root: el("li", { class: "file", "data-index": file.index }),
          state: el("span", { class: "fstate" }),
          bar: el("div", { class: "bar" }, el("div")),
          download: el("a", { class: "secondary disabled download", role: "button", text: "Download" }),
          show: el("button", { type: "button", class: "secondary", disabled: true, text: "Compare",
            onclick: () => this.show(file.index) }),
        };
        row.root.append(el("span", { class: "fname", title: file.name }, el("span", { class: "kind", text: file.kind }), file.name),
          row.bar, el("span", { class: "buttons" }, row.show, row.download), row.state);
        this.list.append(row.root);
        this.rows.set(file.index, row);
      }
      row.file = file;
      row.root.dataset.state = file.state;
      this.setBar(row.bar, file.progress, file.state);
      let text = { queued: "waiting", working: "working…", cancelled: "cancelled" }[file.state] || "";
      if (file.state === "working" && file.kind === "video" && file.frames_done) {
        text = `working… frame ${file.frames_done}${file.frames_total ? ` of ${file.frames_total}` : ""}`;
      } else if (file.state === "done") {
        text = `${file.summary}${file.error ? ` (${file.error})` : ""}`;
      } else if (file.state === "failed") {
        text = `failed: ${file.error}`;
      }
      row.state.textContent = text;
      if (file.state === "done" && file.result_url && !this.results.has(file.index)) {
        this.results.set(file.index, null);
        this.fetchResult(file, row);
      }
    }

    async fetchResult(file, row) {
      const response = await api(file.result_url);
      if (!response.ok) { row.state.textContent = `download failed: ${await message(response)}`; return; }
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      this.urls.push(url);
      this.results.set(file.index, { url, blob });
      row.download.href = url;
      row.download.download = basename(file.result_name);
      row.download.classList.remove("disabled");
      row.show.disabled = false;
      if (this.shown === null) this.show(file.index);
    }

    async original(file) {
      if (this.originals.has(file.index)) return this.originals.get(file.index);
      const source = this.files[file.upload];
      let blob = null;
      if (source && file.entry === null) blob = source;
      else if (source) blob = await zipEntry(source, file.entry).catch(() => null);
      const url = blob ? URL.createObjectURL(blob) : null;
      if (url) this.urls.push(url);
      this.originals.set(file.index, url);
      return url;
    }

    async show(index) {
      const row = this.rows.get(index);
      const result = this.results.get(index);
      if (!row || !result) return;
      this.shown = index;
      for (const other of this.rows.values()) other.root.classList.toggle("selected", other === row);
      const file = row.file;
      const before = await this.original(file);
      const caption = el("figcaption", { text: `${file.name}: ${file.summary}` });
      let view;
      if (file.kind === "video") {
        view = el("div", { class: "videos" },
          before ? el("figure", {}, el("video", { src: before, controls: true, muted: true, playsinline: true }), el("figcaption", { text: "Before" })) : null,
          el("figure", {}, el("video", { src: result.url, controls: true, muted: true, playsinline: true }), el("figcaption", { text: "After" })));
      } else if (before && !/tiff/.test(file.result_type)) {
        const after = el("img", { class: "after", src: result.url, alt: `${file.name}, anonymized` });
        const divider = el("div", { class: "divider" });
        const slider = el("input", { type: "range", min: 0, max: 100, value: 50, "aria-label": "Move to compare before and after" });
        const place = () => {
          after.style.clipPath = `inset(0 0 0 ${slider.value}%)`;
          divider.style.left = `${slider.value}%`;
        };
        slider.addEventListener("input", place);
        view = el("div", { class: "frame" }, el("img", { class: "before", src: before, alt: `${file.name}, original` }),
          after, divider, el("span", { class: "tag before", text: "Before" }), el("span", { class: "tag after", text: "After" }), slider);
        place();
      } else if (!/tiff/.test(file.result_type)) {
        view = el("div", { class: "frame" }, el("img", { src: result.url, alt: `${file.name}, anonymized` }));
      } else {
        view = el("p", { class: "notice", text: "No preview for TIFF pictures; download to see it." });
      }
      this.compare.replaceChildren(el("figure", { class: "compare" }, view, caption));
    }

    async downloadAll() {
      this.zipButton.disabled = true;
      const response = await api(`/api/jobs/${this.id}/result`);
      if (!response.ok) { this.failed(await message(response)); return; }
      const url = URL.createObjectURL(await response.blob());
      this.urls.push(url);
      const link = el("a", { href: url, download: `faceveil-${this.id.slice(0, 8)}.zip` });
      document.body.append(link);
      link.click();
      link.remove();
      this.deleted = true; // the server deletes a job once its zip was sent
      this.state.textContent = "Downloaded; the server has deleted this job's files.";
    }

    forget() {
      if (this.id && !this.deleted) {
        this.deleted = true;
        fetch(`/api/jobs/${this.id}`, { method: "DELETE", keepalive: true, headers: withToken() }).catch(() => {});
      }
    }

    clear() {
      this.gone = true;
      this.forget();
      for (const url of this.urls) URL.revokeObjectURL(url);
      this.root.remove();
      cards.delete(this);
    }
  }

  function start() {
    const files = pending.splice(0);
    renderPicked();
    const data = new FormData();
    for (const file of files) data.append("files", file, file.name);
    appendOptions(data);
    const card = new JobCard(files);
    const send = (retry) => {
      const request = new XMLHttpRequest();
      request.open("POST", "/api/jobs");
      for (const [key, value] of Object.entries(withToken())) request.setRequestHeader(key, value);
      request.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) card.uploading(event.loaded / event.total);
      });
      request.addEventListener("load", () => {
        let body = {};
        try { body = JSON.parse(request.responseText); } catch { /* not JSON */ }
        if (request.status === 202) card.follow(body);
        else if (request.status === 401 && retry && askToken()) send(false);
        else card.failed(body.message || `${request.status} ${request.statusText}`);
      });
      request.addEventListener("error", () => card.failed("The upload failed (is the server still running?)"));
      request.send(data);
    };
    send(true);
  }

  window.addEventListener("pagehide", () => { for (const card of cards) card.forget(); });

  document.addEventListener("DOMContentLoaded", () => {
    setUpPicking();
    $("#start").addEventListener("click", start);
    loadOptions().catch((error) => notice(`Cannot reach the server: ${error}`, true));
  });
})();
