// Renders /api/openapi.json as a plain list: no Swagger UI, nothing loaded from elsewhere.
"use strict";

(() => {
  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function schemaFields(operation) {
    const content = operation.requestBody?.content || {};
    const form = content["multipart/form-data"]?.schema?.properties || {};
    return Object.entries(form).map(([name, schema]) => [name,
      schema.format === "binary" || schema.items?.format === "binary" ? "file" + (schema.type === "array" ? "s" : "") : (schema.description || schema.type || "")]);
  }

  async function main() {
    const root = document.getElementById("api");
    const token = sessionStorage.getItem("faceveil-token");
    const response = await fetch("/api/openapi.json", { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    if (!response.ok) {
      root.replaceChildren(el("p", `The schema needs the server's token (${response.status}); open the app with #token=… first.`, "notice error"));
      return;
    }
    const spec = await response.json();
    const sections = [el("p", spec.info.description || "")];
    for (const [path, methods] of Object.entries(spec.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        const section = el("section");
        const title = el("h2");
        title.append(el("span", method.toUpperCase(), "method"), path);
        section.append(title, el("p", operation.summary || ""));
        if (operation.description) section.append(el("p", operation.description));
        const rows = [...(operation.parameters || []).map((p) => [p.name, `${p.in} parameter`]), ...schemaFields(operation)];
        const codes = Object.entries(operation.responses || {}).map(([code, r]) => [code, r.description || ""]);
        for (const [heading, list] of [["field", rows], ["status", codes]]) {
          if (!list.length) continue;
          const table = el("table");
          const head = el("tr");
          head.append(el("th", heading), el("th", ""));
          table.append(head);
          for (const [a, b] of list) {
            const row = el("tr");
            row.append(el("td", a), el("td", b));
            table.append(row);
          }
          section.append(table);
        }
        sections.push(section);
      }
    }
    root.replaceChildren(...sections);
  }

  document.addEventListener("DOMContentLoaded", () => { main().catch((error) => { document.getElementById("api").textContent = String(error); }); });
})();
