// maillab console: live updates over Server-Sent Events, the transcript
// filter, confirmations and the print button. Pages work without it.
"use strict";
(function () {
  function confirmForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (f) {
      f.addEventListener("submit", function (e) {
        if (!window.confirm(f.getAttribute("data-confirm"))) { e.preventDefault(); }
      });
    });
    document.querySelectorAll("[data-action=print]").forEach(function (b) {
      b.addEventListener("click", function () { window.print(); });
    });
  }

  function setStatus(text) {
    var s = document.querySelector("[data-test=live-status]");
    if (s) { s.textContent = text; }
  }

  // ---- lab transcript ----
  var kinds = ["transcript", "dns", "fault", "session", "auth", "delivery", "lab"];

  function transcript() {
    var list = document.querySelector("[data-test=transcript]");
    if (!list) { return; }
    var hl = new RegExp(list.getAttribute("data-hl"), "i");
    var filter = document.querySelector("[data-test=transcript-filter]");
    var last = 0;
    list.querySelectorAll("[data-test=transcript-line]").forEach(function (li) {
      last = Math.max(last, Number(li.getAttribute("data-seq")) || 0);
    });
    function apply(li) {
      var want = filter ? filter.value : "";
      li.hidden = want !== "" && li.getAttribute("data-service") !== want;
    }
    function ensureOption(service) {
      if (!filter || !service) { return; }
      for (var i = 0; i < filter.options.length; i++) {
        if (filter.options[i].value === service) { return; }
      }
      var o = document.createElement("option");
      o.value = service; o.textContent = service;
      filter.appendChild(o);
    }
    if (filter) {
      filter.addEventListener("change", function () {
        list.querySelectorAll("[data-test=transcript-line]").forEach(apply);
      });
    }
    function span(cls, text) {
      var s = document.createElement("span");
      s.className = cls; s.textContent = text;
      return s;
    }
    function add(ev) {
      if (ev.seq <= last) { return; }
      last = ev.seq;
      var atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
      var li = document.createElement("li");
      li.setAttribute("data-test", "transcript-line");
      li.setAttribute("data-seq", String(ev.seq));
      li.setAttribute("data-service", ev.service || "");
      li.setAttribute("data-kind", ev.kind || "");
      li.setAttribute("data-dir", ev.dir || "");
      if (ev.kind === "fault" || ev.kind === "auth" || hl.test(ev.text || "")) { li.className = "hl"; }
      var t = new Date(ev.time);
      var ts = isNaN(t) ? "" : t.toISOString().substring(11, 23);
      li.appendChild(span("t", ts)); li.appendChild(document.createTextNode(" "));
      li.appendChild(span("svc", ev.service || "")); li.appendChild(document.createTextNode(" "));
      li.appendChild(span("dir", ev.dir || "")); li.appendChild(document.createTextNode(" "));
      li.appendChild(span("txt", ev.text || ""));
      ensureOption(ev.service);
      apply(li);
      list.appendChild(li);
      if (atBottom) { list.scrollTop = list.scrollHeight; }
    }
    list.scrollTop = list.scrollHeight;
    if (!window.EventSource) { return; }
    var src = new EventSource(list.getAttribute("data-events") + "?since=" + last);
    kinds.forEach(function (k) {
      src.addEventListener(k, function (e) {
        try { add(JSON.parse(e.data)); } catch (err) { /* a malformed event is skipped */ }
      });
    });
    src.addEventListener("open", function () { setStatus("live"); });
    src.addEventListener("dropped", function (e) { setStatus("live (some events were dropped: " + e.data + ")"); });
    src.addEventListener("closed", function () { setStatus("the lab was stopped"); src.close(); });
    src.addEventListener("error", function () { setStatus("reconnecting…"); });
  }

  // ---- class board ----
  var statusText = { not_started: "not started", connected: "client connected", answered: "answered" };

  function duration(s) {
    if (s === null || s === undefined) { return ""; }
    s = Math.round(s);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + "h" : "") + (h || m ? m + "m" : "") + r + "s";
  }

  function classBoard() {
    var board = document.querySelector("[data-test=class-board]");
    if (!board || !window.EventSource) { return; }
    var src = new EventSource(board.getAttribute("data-events"));
    src.addEventListener("open", function () { setStatus("live"); });
    src.addEventListener("error", function () { setStatus("reconnecting…"); });
    src.addEventListener("ticket", function (e) {
      var t;
      try { t = JSON.parse(e.data); } catch (err) { return; }
      var cell = null;
      board.querySelectorAll("[data-test=ticket-cell]").forEach(function (c) {
        if (c.getAttribute("data-ticket") === t.id) { cell = c; }
      });
      if (!cell) { return; }
      var result = t.right === true ? "right" : (t.right === false ? "wrong" : "");
      cell.setAttribute("data-status", t.status || "");
      cell.setAttribute("data-result", result);
      cell.className = "ticket " + (t.status || "") + " " + result;
      function set(field, text) {
        var el = cell.querySelector("[data-field=" + field + "]");
        if (el) { el.textContent = text; }
      }
      set("status", statusText[t.status] || t.status || "");
      set("result", result);
      set("answer", t.answer && t.answer.code ? t.answer.code : "");
      set("seconds", duration(t.seconds));
      var n = t.hints_used || 0;
      set("hints", n + (n === 1 ? " hint" : " hints"));
    });
  }

  function start() { confirmForms(); transcript(); classBoard(); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else { start(); }
})();
