// The gateways' counting rules of dispatcher/text.py, for the compose page's live counter. Kept equal to
// the Python by tests/web/test_textcount.py, which runs both on the same samples.
(function (root) {
  var SINGLE_SEGMENT = 70, SINGLE_SEGMENT_ASCII = 140, MULTI_SEGMENT = 67;
  function isAscii(text) { return /^[\x00-\x7f]*$/.test(text); }
  // Characters as the gateways count them: UTF-16 units (an emoji counts two), which is what a
  // JavaScript string's length already is.
  function length(text) { return text.length; }
  function segments(text) {
    var n = length(text);
    if (n <= SINGLE_SEGMENT || (n <= SINGLE_SEGMENT_ASCII && isAscii(text))) return 1;
    return Math.ceil(n / MULTI_SEGMENT);
  }
  // A template with {column} placeholders filled from ``values``; {{ and }} are literal braces.
  function render(template, values) {
    return template.replace(/\{\{|\}\}|\{([^{}]*)\}/g, function (token, name) {
      if (token === "{{") return "{";
      if (token === "}}") return "}";
      var key = (name || "").trim();
      return Object.prototype.hasOwnProperty.call(values, key) ? values[key] : token;
    });
  }
  // Longer than an account's limit (single-byte text, text with double-byte characters); 0: no limit.
  function tooLong(text, maxSingle, maxDouble) {
    var limit = isAscii(text) ? maxSingle : maxDouble;
    return limit > 0 && length(text) > limit ? limit : 0;
  }
  root.smsText = {length: length, segments: segments, render: render, tooLong: tooLong};
})(window);
