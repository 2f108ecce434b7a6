/*! outreach embed v1: renders an outreach form into <div data-outreach-form="slug">, posts it
 * with fetch, shows each field's error from a 422 next to the field and the thank-you message
 * on 202. No dependencies, no iframe. Without this script, a form inside the div posts as a
 * plain HTML form. */
(function () {
  "use strict";
  var script = document.currentScript;
  var base = script ? script.src.replace(/\/embed\/v1\/form\.js(\?.*)?$/, "") : "";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs) if (attrs[k] !== null && attrs[k] !== undefined) node.setAttribute(k, attrs[k]);
    if (text) node.textContent = text;
    return node;
  }

  function errorNode(form, name) {
    return form.querySelector('[data-field="' + name + '"] .of-error');
  }

  function field(slug, f) {
    var id = "of-" + slug + "-" + f.name;
    var wrap = el("div", { "class": "of-field", "data-field": f.name });
    wrap.appendChild(el("label", { "for": id }, f.label + (f.required ? " *" : "")));
    var input = el("input", { id: id, name: f.name, type: f.type, autocomplete: f.autocomplete });
    if (f.required) input.required = true;
    wrap.appendChild(input);
    var err = el("p", { "class": "of-error", id: id + "-error", role: "alert" });
    err.hidden = true;
    wrap.appendChild(err);
    return wrap;
  }

  function build(box, def) {
    var slug = def.slug;
    var form = el("form", { "class": "outreach-form", method: "post", action: base + "/api/v1/registrations", novalidate: "" });
    var hidden = { kind: def.kind, asset: slug, _t: String(def.started) };
    if (def.redirect_to) hidden.redirect_to = def.redirect_to;
    for (var h in hidden) form.appendChild(el("input", { type: "hidden", name: h, value: hidden[h] }));
    def.fields.forEach(function (f) { form.appendChild(field(slug, f)); });
    var c = el("div", { "class": "of-field of-consent", "data-field": "consent" });
    var cb = el("input", { id: "of-" + slug + "-consent", name: "consent", type: "checkbox", value: "true" });
    c.appendChild(cb);
    c.appendChild(el("label", { "for": cb.id }, def.consent.text));
    var cerr = el("p", { "class": "of-error", role: "alert" });
    cerr.hidden = true;
    c.appendChild(cerr);
    form.appendChild(c);
    var hp = el("div", { "aria-hidden": "true", style: "position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden" });
    hp.appendChild(el("input", { name: "website", type: "text", tabindex: "-1", autocomplete: "off" }));
    form.appendChild(hp);
    var ferr = el("p", { "class": "of-error of-form-error", role: "alert" });
    ferr.hidden = true;
    form.appendChild(ferr);
    form.appendChild(el("button", { type: "submit" }, def.submit));
    box.appendChild(form);
    return form;
  }

  // the person's time zone from the browser (Intl), for mail sent at their local time; the
  // plain form carries it disabled (not posted) until this fills it
  function browserZone() {
    try {
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
      return zone === "Etc/Unknown" ? "" : zone;
    } catch (e) { return ""; }
  }

  function zone(form) {
    var input = form.querySelector('[name="timezone"]');
    var found = browserZone();
    if (!input) {
      if (!found) return;
      input = el("input", { type: "hidden", name: "timezone", "data-outreach-timezone": "" });
      form.appendChild(input);
    }
    if (!input.value) input.value = found;
    input.disabled = !input.value;
  }

  function clear(form) {
    Array.prototype.forEach.call(form.querySelectorAll(".of-error"), function (p) { p.hidden = true; p.textContent = ""; });
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (i) { i.removeAttribute("aria-invalid"); });
  }

  function show(form, name, message) {
    var p = errorNode(form, name) || form.querySelector(".of-form-error");
    p.textContent = message;
    p.hidden = false;
    var input = form.querySelector('[name="' + name + '"]');
    if (input) { input.setAttribute("aria-invalid", "true"); input.setAttribute("aria-describedby", p.id || ""); }
  }

  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  // ALTCHA (v1) proof of work: find n <= maxnumber with sha256(salt + n) == challenge
  function solve(c) {
    if (!window.crypto || !crypto.subtle) return Promise.reject(new Error("insecure page"));
    var encoder = new TextEncoder();
    var next = 0;
    function round() {
      var tries = [];
      for (var i = 0; i < 500 && next <= c.maxnumber; i++, next++) tries.push(next);
      return Promise.all(tries.map(function (n) {
        return crypto.subtle.digest("SHA-256", encoder.encode(c.salt + n)).then(function (h) {
          return hex(h) === c.challenge ? n : -1;
        });
      })).then(function (found) {
        for (var j = 0; j < found.length; j++) if (found[j] >= 0) return found[j];
        if (next > c.maxnumber) throw new Error("unsolved");
        return round();
      });
    }
    return round().then(function (n) {
      return btoa(JSON.stringify({ algorithm: c.algorithm, challenge: c.challenge, number: n,
        salt: c.salt, signature: c.signature }));
    });
  }

  function proof(def) {
    if (!def.proof_of_work) return Promise.resolve(null);
    return fetch(base + "/f/" + encodeURIComponent(def.slug) + "/challenge", { mode: "cors" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(solve);
  }

  function enhance(box, form, thanks, def) {
    zone(form);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clear(form);
      var body = {};
      Array.prototype.forEach.call(form.elements, function (input) {
        if (!input.name || input.disabled || input.name === "thanks" || input.name === "redirect_to") return;
        if (input.type === "checkbox") body[input.name] = input.checked;
        else body[input.name] = input.value;
      });
      var button = form.querySelector("button");
      button.disabled = true;
      proof(def)
        .then(function (solution) {
          if (solution) body.altcha = solution;
          return fetch(form.action, { method: "POST", mode: "cors", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
        })
        .then(function (response) {
          return response.json().catch(function () { return {}; }).then(function (data) {
            button.disabled = false;
            if (response.status === 202) {
              var redirect = form.querySelector('[name="redirect_to"]');
              if (redirect && redirect.value) { window.location.assign(redirect.value); return; }
              var done = el("div", { "class": "of-thanks", role: "status" }, thanks);
              box.replaceChild(done, form);
              return;
            }
            var error = (data && data.error) || {};
            var fields = error.fields || {};
            if (fields.timezone) { // a zone this server does not know: send without it
              var zoneInput = form.querySelector('[name="timezone"]');
              if (zoneInput) zoneInput.disabled = true;
              delete fields.timezone;
              if (!Object.keys(fields).length) fields._form = ["Please send the form again."];
            }
            var names = Object.keys(fields);
            if (!names.length) show(form, "_form", error.message || "Something went wrong; please try again.");
            names.forEach(function (name) { show(form, name, fields[name][0]); });
            var first = form.querySelector('[aria-invalid="true"]');
            if (first) first.focus();
          });
        })
        .catch(function () {
          button.disabled = false;
          show(form, "_form", "Could not send the form; please try again.");
        });
    });
  }

  // a few default rules (low specificity: the host site's own CSS wins)
  var CSS = ".outreach-form{max-width:32rem;font:inherit}" +
    ".outreach-form .of-field{margin:0 0 .9rem}" +
    ".outreach-form .of-field label{display:block;font-weight:600;margin-bottom:.2rem}" +
    ".outreach-form .of-field input[type=text],.outreach-form .of-field input[type=email]," +
    ".outreach-form .of-field input[type=tel]{box-sizing:border-box;width:100%;padding:.45rem .5rem;" +
    "font:inherit;border:1px solid #8a93a6;border-radius:4px}" +
    ".outreach-form [aria-invalid=true]{border-color:#b00020}" +
    ".outreach-form .of-consent{display:flex;gap:.5rem;align-items:flex-start;flex-wrap:wrap}" +
    ".outreach-form .of-consent label{font-weight:400;flex:1}" +
    ".outreach-form .of-consent .of-error{flex-basis:100%}" +
    ".outreach-form .of-error{color:#b00020;margin:.2rem 0 0}" +
    ".outreach-form button{font:inherit;padding:.55rem 1.2rem;background:#1f4fd1;color:#fff;" +
    "border:0;border-radius:4px;cursor:pointer}" +
    ".of-thanks{padding:1rem;border:1px solid #9ccc9c;background:#eef7ee;border-radius:4px}";

  function style() {
    if (document.querySelector("style[data-outreach]")) return;
    var node = el("style", { "data-outreach": "" });
    node.textContent = CSS;
    (document.head || document.documentElement).appendChild(node);
  }

  function start(box) {
    if (box.getAttribute("data-outreach-ready")) return;
    style();
    box.setAttribute("data-outreach-ready", "1");
    var slug = box.getAttribute("data-outreach-form");
    fetch(base + "/f/" + encodeURIComponent(slug) + ".json", { mode: "cors" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (def) {
        var form = box.querySelector("form");
        if (!form) form = build(box, def);
        // the fill-time clock starts now (a pasted snippet carries the time it was made)
        var started = form.querySelector('[name="_t"]');
        if (started) started.value = String(def.started);
        enhance(box, form, def.thank_you_message, def);
      })
      .catch(function () {
        var form = box.querySelector("form");
        if (form) return; // the plain form still posts
        box.appendChild(el("p", { "class": "of-error", role: "alert" }, "This form is not available."));
      });
  }

  function all() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-outreach-form]"), start);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", all);
  else all();
})();
