// The server counts a reply's offset in Unicode code points (Python str indices); a JS
// string's length counts UTF-16 units, so an emoji would count twice.

/** The number of code points in `text`. */
function codePointLength(text) {
  return Array.from(text).length;
}

module.exports = { codePointLength };
