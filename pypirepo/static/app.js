// pypirepo's web UI: small enhancements over pages that work without JavaScript.
//  - a Copy button on every [data-copy] snippet;
//  - a <dialog> for destructive actions, instead of the confirmation page;
//  - search as you type on forms with data-live-results="<id of the results region>".
(function () {
  "use strict";

  // --- copy buttons ---------------------------------------------------------------------

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain http on another host: the older way, through a selection.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }

  function addCopyButton(snippet) {
    var code = snippet.querySelector("code");
    if (!code || snippet.querySelector(".copy-button")) { return; }
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button copy-button";
    button.textContent = "Copy";
    var label = snippet.querySelector("figcaption");
    var named = snippet.getAttribute("data-copy-label");
    button.setAttribute("aria-label", named || (label ? "Copy " + label.textContent : "Copy"));
    var reset;
    button.addEventListener("click", function () {
      copyText(code.textContent).then(function () {
        button.textContent = "Copied";
      }, function () {
        button.textContent = "Press Ctrl+C";
        var range = document.createRange();
        range.selectNodeContents(code);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      });
      clearTimeout(reset);
      reset = setTimeout(function () { button.textContent = "Copy"; }, 2000);
    });
    snippet.classList.add("snippet--copyable");
    if (label) { snippet.classList.add("snippet--labelled"); }
    snippet.appendChild(button);
  }

  function enhanceSnippets(root) {
    root.querySelectorAll("[data-copy]").forEach(addCopyButton);
  }

  // --- confirmation dialogs -------------------------------------------------------------

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-confirm-dialog]");
    if (!link) { return; }
    var dialog = document.getElementById(link.getAttribute("data-confirm-dialog"));
    if (!dialog || typeof dialog.showModal !== "function") { return; } // the page it is
    event.preventDefault();
    dialog.showModal();
    // Focus starts on Cancel: Enter must not carry out what the dialog asks about.
    var cancel = dialog.querySelector("[formmethod=dialog]");
    if (cancel) { cancel.focus(); }
  });

  // --- search as you type ---------------------------------------------------------------

  var DELAY_MS = 200;

  function liveSearch(form) {
    var region = document.getElementById(form.getAttribute("data-live-results"));
    var input = form.querySelector("input[name=q]");
    var status = form.querySelector("[data-live-status]");
    if (!region || !input || !window.fetch) { return; }
    var timer, controller, last = input.value;

    function url(partial) {
      var params = new URLSearchParams(new FormData(form));
      if (partial) { params.set("partial", "1"); }
      return form.action + "?" + params.toString();
    }

    var onSearchPage = new URL(form.action).pathname === window.location.pathname;

    function update() {
      if (input.value === last) { return; }
      last = input.value;
      if (controller) { controller.abort(); }
      if (!onSearchPage && !input.value.trim()) {
        region.innerHTML = ""; // elsewhere an empty box shows nothing, not every project
        if (status) { status.textContent = ""; }
        return;
      }
      controller = new AbortController();
      fetch(url(true), { signal: controller.signal, headers: { Accept: "text/html" } })
        .then(function (response) {
          if (!response.ok) { throw new Error(response.status); }
          return response.text();
        })
        .then(function (html) {
          region.innerHTML = html;
          enhanceSnippets(region);
          var summary = region.querySelector("[data-summary]");
          if (status) { status.textContent = summary ? summary.textContent.trim() : ""; }
          // On the search page itself the address follows, so reload and back work.
          if (onSearchPage) {
            window.history.replaceState(null, "", url(false));
          }
        })
        .catch(function () { /* aborted or failed: the form still submits */ });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(update, DELAY_MS);
    });
  }

  function start() {
    enhanceSnippets(document);
    document.querySelectorAll("form[data-live-results]").forEach(liveSearch);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
