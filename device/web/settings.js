// camd's settings screen: every setting GET /api/v1/settings answers, as
// an input of its type; Save sends the changed ones as one PATCH (all or
// none), and a value camd refuses (422) is explained next to its field.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  // window.camdSettings exposes the screen's state for people and tests.
  const st = (window.camdSettings = { loaded: false, saved: 0, fieldErrors: {}, error: null });

  const text = camdText.settings; // text.js
  const labels = text.labels;
  // choices: the values of the settings that take one of a few.
  const choices = {
    night_mode: ["auto", "day", "night"],
    recording_mode: ["continuous", "motion", "off"],
    crash_reports: ["never", "ask", "send"],
  };
  const hidden = new Set(["whip_token_set"]); // not a setting: says whether whip_token is set

  let loaded = {};

  function input(key, value) {
    let el;
    if (choices[key]) {
      el = document.createElement("select");
      for (const c of choices[key].includes(value) ? choices[key] : [value, ...choices[key]]) el.add(new Option(c, c));
      el.value = value;
    } else if (typeof value === "boolean") {
      el = document.createElement("input");
      el.type = "checkbox";
      el.checked = value;
    } else if (typeof value === "number") {
      el = document.createElement("input");
      el.type = "number";
      el.inputMode = "numeric";
      el.value = value;
    } else if (Array.isArray(value)) {
      el = document.createElement("textarea");
      el.rows = 3;
      el.value = value.join("\n");
    } else {
      el = document.createElement("input");
      el.type = key === "whip_token" ? "password" : "text";
      el.value = value;
    }
    el.id = "set-" + key;
    el.name = key;
    return el;
  }

  // read is an input's value in the setting's JSON type.
  function read(el, was) {
    if (el.type === "checkbox") return el.checked;
    if (typeof was === "number") return el.value.trim() === "" ? NaN : Number(el.value);
    if (Array.isArray(was)) return el.value.split("\n").map((s) => s.trim()).filter(Boolean);
    return el.value;
  }

  function render(values) {
    loaded = values;
    const form = $("setForm");
    form.replaceChildren();
    const keys = Object.keys(values).filter((k) => !hidden.has(k));
    if ("whip_token_set" in values && !keys.includes("whip_token")) keys.splice(keys.indexOf("whip_pin_sha256"), 0, "whip_token");
    for (const key of keys) {
      const value = key === "whip_token" ? "" : values[key];
      const el = input(key, value);
      const div = document.createElement("div");
      div.className = "field";
      const label = document.createElement("label");
      label.htmlFor = el.id;
      label.textContent = labels[key] || key.replaceAll("_", " ");
      if (key === "whip_token") el.placeholder = values.whip_token_set ? text.tokenSet : text.tokenNotSet;
      const err = document.createElement("p");
      err.className = "field-error";
      err.id = "set-" + key + "-error";
      err.hidden = true;
      el.setAttribute("aria-describedby", err.id);
      if (el.type === "checkbox") {
        label.prepend(el, " ");
        div.append(label, err);
      } else {
        div.append(label, el, err);
      }
      form.append(div);
    }
    st.loaded = true;
  }

  function clearErrors() {
    st.fieldErrors = {};
    for (const p of document.querySelectorAll("#setForm .field-error")) p.hidden = true;
    for (const el of document.querySelectorAll("#setForm [aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  function fieldError(key, msg) {
    st.fieldErrors[key] = msg;
    const p = $("set-" + key + "-error");
    if (!p) return false;
    p.textContent = msg;
    p.hidden = false;
    $("set-" + key).setAttribute("aria-invalid", "true");
    $("set-" + key).focus();
    return true;
  }

  function status(msg, isError) {
    st.error = isError ? msg : null;
    $("setStatus").textContent = msg;
    $("setStatus").className = isError ? "error" : "";
  }

  async function load() {
    clearErrors();
    try {
      render(await camdShell.json("GET", "/api/v1/settings"));
      status("");
    } catch (err) {
      status(err.message, true);
    }
  }

  async function save() {
    clearErrors();
    const patch = {};
    for (const el of $("setForm").elements) {
      const key = el.name;
      if (key === "whip_token") {
        if (el.value) patch[key] = el.value;
        continue;
      }
      const v = read(el, loaded[key]);
      if (JSON.stringify(v) !== JSON.stringify(loaded[key])) patch[key] = v;
    }
    for (const [k, v] of Object.entries(patch)) {
      if (Number.isNaN(v)) {
        fieldError(k, text.typeANumber);
        status(text.fixOne, true);
        return;
      }
    }
    if (Object.keys(patch).length === 0) {
      status(text.nothingChanged);
      return;
    }
    status(text.saving);
    try {
      render(await camdShell.json("PATCH", "/api/v1/settings", patch));
      st.saved++;
      status(text.saved);
    } catch (err) {
      if (err.field && fieldError(err.field, err.message)) status(text.fixOne, true);
      else status(err.message, true);
    }
  }

  document.addEventListener("camd:screen", (s) => {
    if (s.detail === "settings") load();
  });
  $("setSave").onclick = save;
  $("setReload").onclick = load;
  $("setForm").onsubmit = (e) => {
    e.preventDefault();
    save();
  };
})();
