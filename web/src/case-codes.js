// Case numbers and PINs as a person types or pastes them, read with exactly the rules the server
// uses (server/codes.py): ASCII only, surrounding whitespace ignored, any case, hyphens and spaces
// optional, O read as 0, I and L as 1; Crockford's base32 alphabet. What comes out is the
// canonical form the server shows (XXXX-XXXX-XXXX-XXXX, XXXXX-XXXXX), or null. Checking here
// first means a typo is explained next to its field instead of costing a round trip.

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CASE_NUMBER_CHARS = 16;
const PIN_CHARS = 10;
// What Python's str.strip() removes from an ASCII string (server/codes.py strips with it).
const PY_WHITESPACE = "[\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f ]";
const SURROUNDING_WHITESPACE = new RegExp(`^${PY_WHITESPACE}+|${PY_WHITESPACE}+$`, "g");
const TYPOS = { O: "0", I: "1", L: "1", "-": "", " ": "" };

function compact(text, length) {
  // eslint-disable-next-line no-control-regex
  if (typeof text !== "string" || text.length > 4 * length || !/^[\x00-\x7f]*$/.test(text)) return null;
  const chars = text.replace(SURROUNDING_WHITESPACE, "").toUpperCase().replace(/[OIL\- ]/g, (c) => TYPOS[c]);
  if (chars.length !== length || [...chars].some((c) => !ALPHABET.includes(c))) return null;
  return chars;
}

function group(chars, size) {
  const parts = [];
  for (let i = 0; i < chars.length; i += size) parts.push(chars.slice(i, i + size));
  return parts.join("-");
}

/** "4ayq 8q7j-bbkg4gnk" -> "4AYQ-8Q7J-BBKG-4GNK"; null if it cannot be a case number. */
export function normaliseCaseNumber(text) {
  const chars = compact(text, CASE_NUMBER_CHARS);
  return chars === null ? null : group(chars, 4);
}

/** "rd5ez p3xh2" -> "RD5EZ-P3XH2"; null if it cannot be a PIN. */
export function normalisePin(text) {
  const chars = compact(text, PIN_CHARS);
  return chars === null ? null : group(chars, 5);
}
