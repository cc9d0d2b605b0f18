// The campaign page: live counts, the sent and delivered bars, the chart, what the campaign waits for,
// and the action buttons the live state allows, polled each second from the JSON API; a confirmation
// before cancelling. A static file, not inline script: the pages' Content-Security-Policy allows none.
(function () {
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  var root = document.getElementById("progress");
  if (!root) return;
  var id = Number(root.dataset.campaign), svg = document.getElementById("chart"), NS = "http://www.w3.org/2000/svg";
  var strings = JSON.parse(root.dataset.strings), lang = root.dataset.lang, loadedState = null;
  var SENT = ["accepted", "delivered", "undelivered", "expired"];
  function fmt(n) { return Number(n || 0).toLocaleString("en-US"); }
  // "08:00" today, "12-02 08:00" another day (with seconds: "08:00:05"): China time, whatever the
  // browser's zone.
  function clock(iso, seconds) {
    if (!iso) return "";
    var parts = {}, at = new Date(iso), now = new Date();
    var f = new Intl.DateTimeFormat("en-CA", {timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit",
      day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"});
    f.formatToParts(at).forEach(function (p) { parts[p.type] = p.value; });
    var today = f.format(now).slice(0, 10), day = parts.year + "-" + parts.month + "-" + parts.day;
    return (day === today ? "" : parts.month + "-" + parts.day + " ") + parts.hour + ":" + parts.minute +
      (seconds ? ":" + parts.second : "");
  }
  function say(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, key) { return values[key] == null ? "" : values[key]; });
  }
  function waitingText(s) {
    var key = s.waiting;
    // Workers or beat never seen: a sentence without "last seen".
    if ((key === "workers" && !s.workers_seen_at) || (key === "beat" && !s.beat_seen_at)) key += "_never";
    var t = strings.waiting[key];
    if (!t) return "";
    var error = s.account_error || {}, hold = s.balance_hold || {};
    return say(t, {
      cost: hold.cost, balance: hold.balance, short: fmt(hold.short_segments),
      time: clock(s.window_opens_at || s.retry_at || s.workers_seen_at || s.beat_seen_at || s.start_at),
      code: error.code || "?",
      meaning: (lang === "zh-CN" ? error.meaning_zh : error.meaning) || "",
      count: fmt(s.reports_due),
    });
  }
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
    text(44, 20, fmt(top), "start");
    // The time axis: China time at its start, middle and end.
    [t0, (t0 + t1) / 2, t1].forEach(function (t, i) {
      var tick = document.createElementNS(NS, "path");
      tick.setAttribute("d", "M" + x(t) + " 190 V195"); tick.setAttribute("class", "axis"); svg.appendChild(tick);
      text(x(t), 210, clock(new Date(t * 1000).toISOString(), true), ["start", "middle", "end"][i], "tick");
    });
  }
  function text(x, y, value, anchor, cls) {
    var label = document.createElementNS(NS, "text");
    label.setAttribute("x", x); label.setAttribute("y", y); label.setAttribute("text-anchor", anchor);
    if (cls) label.setAttribute("class", cls);
    label.textContent = value;
    svg.appendChild(label);
  }
  function bar(name, done, total) {
    document.getElementById("bar-" + name).style.width = (total ? 100 * done / total : 0) + "%";
    document.getElementById("bar-" + name + "-text").textContent = fmt(done) + " / " + fmt(total);
  }
  function update(s) {
    Object.keys(s).forEach(function (k) {
      var cell = document.getElementById("count-" + k);
      if (cell) cell.textContent = fmt(s[k]);
    });
    var state = document.getElementById("state"), inWindow = s.state === "running" && s.waiting === "window";
    state.textContent = inWindow ? strings.badge_window : strings.campaign[s.state] || s.state;
    state.className = "state " + s.state + (inWindow ? " waiting" : "");
    // An action's flash ("Started.") says what was done; once the campaign has moved on, it goes.
    if (loadedState === null) loadedState = s.state;
    else if (s.state !== loadedState) {
      document.querySelectorAll("main > p.flash[role=status]").forEach(function (p) { p.remove(); });
    }
    bar("sent", SENT.reduce(function (a, k) { return a + (s[k] || 0); }, 0), s.recipients);
    bar("delivered", s.delivered || 0, s.recipients);
    // Issue 14: per-variant and per-account figures ("variants|A|reply_rate").
    document.querySelectorAll("[data-figure]").forEach(function (cell) {
      var p = cell.dataset.figure.split("|"), v = ((s[p[0]] || {})[p[1]] || {})[p[2]];
      cell.textContent = /_rate$/.test(p[2]) ? (v == null ? "–" : (100 * v).toFixed(1) + "%") : fmt(v);
    });
    var waiting = document.getElementById("waiting"), text = waitingText(s);
    waiting.textContent = text; waiting.hidden = !text;
    document.querySelectorAll("#actions form[data-states]").forEach(function (form) {
      form.hidden = form.dataset.states.split(" ").indexOf(s.state) < 0 ||
        Boolean(form.dataset.needs && !s[form.dataset.needs]);
    });
  }
  // The history, newest first: redrawn when an entry is added.
  function history(entries) {
    var body = document.querySelector("#history tbody");
    if (!body || !entries) return;
    var first = body.querySelector("tr");
    if (first && entries.length && first.dataset.id === String(entries[0].id)) return;
    while (body.firstChild) body.removeChild(body.firstChild);
    entries.forEach(function (e) {
      var row = document.createElement("tr");
      row.dataset.id = e.id;
      [e.when_shown, e.actor_shown, e.action_shown].forEach(function (value) {
        var cell = document.createElement("td"); cell.textContent = value; row.appendChild(cell);
      });
      body.appendChild(row);
    });
  }
  function tick() {
    fetch("/api/campaigns/" + id + "/progress", {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        update(data.status);
        draw(data.series, data.status.recipients);
        history(data.history);
      })
      .catch(function () {})
      .finally(function () { setTimeout(tick, 1000); });
  }
  tick();
})();
