// The compose page: a sheet choice reloads the page; placeholder chips insert {column} at the cursor.
// A static file, not inline script: the pages' Content-Security-Policy allows no inline script.
document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
  select.addEventListener("change", function () { select.form.submit(); });
});
document.querySelectorAll(".chip").forEach(function (chip) {
  chip.addEventListener("click", function () {
    var t = document.getElementById("template"), text = "{" + chip.dataset.field + "}";
    var start = t.selectionStart, end = t.selectionEnd;
    t.value = t.value.slice(0, start) + text + t.value.slice(end);
    t.focus(); t.selectionStart = t.selectionEnd = start + text.length;
  });
});
