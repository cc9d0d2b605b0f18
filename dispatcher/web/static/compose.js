// The compose page: a sheet choice reloads the page; placeholder chips insert {column} at the cursor; a
// live character and segment counter under the template (static/textcount.js); a proof's outcome, polled.
// A static file, not inline script: the pages' Content-Security-Policy allows no inline script.
document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
  select.addEventListener("change", function () { select.form.submit(); });
});
(function () {
  var template = document.getElementById("template"), counter = document.getElementById("counter");
  var account = document.getElementById("account");
  function say(format, values) {
    return format.replace(/%\((\w+)\)s/g, function (_, key) { return values[key]; });
  }
  function count() {
    if (!template || !counter) return;
    var values = JSON.parse(counter.dataset.values || "{}");
    var text = window.smsText.render(template.value, values);
    var option = account && account.options[account.selectedIndex];
    var limit = option ? window.smsText.tooLong(text, Number(option.dataset.maxSingle), Number(option.dataset.maxDouble)) : 0;
    var shown = say(counter.dataset.format, {chars: window.smsText.length(text), segments: window.smsText.segments(text)});
    if (limit) shown += " · " + say(counter.dataset.tooLong, {limit: limit});
    counter.textContent = template.value ? shown : "";
    counter.classList.toggle("over", Boolean(limit));
    flag();
  }
  // What would be sent as typed: a {name} that is no column, a ｛name｝ in full-width braces (what a
  // Chinese input method types). Said under the counter as it is typed; dispatcher/text.py refuses both.
  function flag() {
    var flags = document.getElementById("counter-flags");
    if (!flags) return;
    var columns = JSON.parse(counter.dataset.columns || "[]"), said = [];
    var text = template.value.replace(/\{\{|\}\}/g, "");
    var unknown = [], wide = [];
    text.replace(/\{([^{}]*)\}/g, function (_, name) {
      name = name.trim();
      if (columns.length && columns.indexOf(name) < 0 && unknown.indexOf("{" + name + "}") < 0) unknown.push("{" + name + "}");
    });
    text.replace(/\uff5b([^\uff5b\uff5d{}]*)\uff5d/g, function (token, name) {
      if (wide.indexOf(token) < 0) { wide.push(token); said.push(say(counter.dataset.fullWidth, {names: token, name: name.trim()})); }
    });
    if (unknown.length) said.unshift(say(counter.dataset.unknown, {names: unknown.join(" ")}));
    while (flags.firstChild) flags.removeChild(flags.firstChild);
    said.forEach(function (t) { var li = document.createElement("li"); li.textContent = t; flags.appendChild(li); });
    flags.hidden = !said.length;
  }
  document.querySelectorAll(".chip").forEach(function (chip) {
    chip.addEventListener("click", function () {
      var text = "{" + chip.dataset.field + "}";
      var start = template.selectionStart, end = template.selectionEnd;
      template.value = template.value.slice(0, start) + text + template.value.slice(end);
      template.focus(); template.selectionStart = template.selectionEnd = start + text.length;
      count();
    });
  });
  if (template) template.addEventListener("input", count);
  if (account) account.addEventListener("change", count);
  count();

  var proof = document.getElementById("proof");
  if (!proof) return;
  var states = JSON.parse(proof.dataset.states), zh = proof.dataset.lang === "zh-CN";
  var FINAL = ["delivered", "undelivered", "failed", "unknown", "cancelled"];
  function tick() {
    fetch("/api/proofs/" + proof.dataset.proof, {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        var open = false;
        data.numbers.forEach(function (n) {
          var row = proof.querySelector('tr[data-mobile="' + n.mobile + '"]');
          if (!row) return;
          row.querySelector(".proof-state").textContent = states[n.state] || n.state;
          // What the answer means (成功送达手机), not its code or the gateway's batch id.
          var taken = n.state === "accepted" ? (data.has_reports ? proof.dataset.awaiting : proof.dataset.noReports) : "";
          row.querySelector(".proof-answer").textContent = (zh ? n.meaning_zh : n.meaning) || taken || "";
          if (FINAL.indexOf(n.state) < 0 && !(n.state === "accepted" && !data.has_reports)) open = true;
        });
        if (open) setTimeout(tick, 1000);
      })
      .catch(function () { setTimeout(tick, 2000); });
  }
  tick();
})();
