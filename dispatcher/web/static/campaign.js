// The campaign page: live counts, progress bar and chart, polled each second; a confirmation before
// cancelling. A static file, not inline script: the pages' Content-Security-Policy allows no inline script.
(function () {
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  var root = document.getElementById("progress");
  if (!root) return;
  var id = Number(root.dataset.campaign), svg = document.getElementById("chart"), NS = "http://www.w3.org/2000/svg";
  var done = ["accepted", "delivered", "undelivered", "expired", "failed", "unknown"];
  function fmt(n) { return Number(n).toLocaleString("en-US"); }
  function line(points, x, y, cls) {
    if (!points.length) return;
    var p = document.createElementNS(NS, "polyline");
    p.setAttribute("points", points.map(function (q) { return x(q[0]) + "," + y(q[1]); }).join(" "));
    p.setAttribute("class", cls);
    svg.appendChild(p);
  }
  function draw(series, total) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var all = series.accepted.concat(series.delivered);
    var axis = document.createElementNS(NS, "path");
    axis.setAttribute("d", "M40 10 V190 H590"); axis.setAttribute("class", "axis"); svg.appendChild(axis);
    if (!all.length) return;
    var t0 = Math.min.apply(null, all.map(function (q) { return q[0]; }));
    var t1 = Math.max(t0 + 1, Math.max.apply(null, all.map(function (q) { return q[0]; })));
    var top = Math.max(total, 1);
    var x = function (t) { return (40 + 550 * (t - t0) / (t1 - t0)).toFixed(1); };
    var y = function (v) { return (190 - 180 * v / top).toFixed(1); };
    line(series.accepted, x, y, "accepted");
    line(series.delivered, x, y, "delivered");
    var label = document.createElementNS(NS, "text");
    label.setAttribute("x", 44); label.setAttribute("y", 20); label.textContent = fmt(top);
    svg.appendChild(label);
  }
  function tick() {
    fetch("/api/campaigns/" + id + "/progress", {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        var s = data.status;
        Object.keys(s).forEach(function (k) {
          var cell = document.getElementById("count-" + k);
          if (cell) cell.textContent = fmt(s[k]);
        });
        var state = document.getElementById("state");
        state.textContent = s.state; state.className = "state " + s.state;
        var finished = done.reduce(function (a, k) { return a + (s[k] || 0); }, 0);
        document.getElementById("bar-done").style.width = (s.recipients ? 100 * finished / s.recipients : 0) + "%";
        draw(data.series, s.recipients);
      })
      .catch(function () {})
      .finally(function () { setTimeout(tick, 1000); });
  }
  tick();
})();
