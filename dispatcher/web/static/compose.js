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
          var meaning = zh ? n.meaning_zh : n.meaning;
          row.querySelector(".proof-answer").textContent =
            (n.vendor_code ? n.vendor_code + (meaning ? " · " + meaning : "") : "") || n.batch_id || n.detail || "";
          if (FINAL.indexOf(n.state) < 0 && !(n.state === "accepted" && !data.has_reports)) open = true;
        });
        if (open) setTimeout(tick, 1000);
      })
      .catch(function () { setTimeout(tick, 2000); });
  }
  tick();
})();
