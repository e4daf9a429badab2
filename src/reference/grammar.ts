// The grammar of image references (distribution/reference regexp.go) and of digests (go-digest), as scanners.

// Why scanners and not the regexps themselves: parseReference runs for every container of every admitted
// pod, and a regexp's cost rests on how the engine backtracks through nested repetitions. A scanner reads
// each character a bounded number of times by construction, which a review can check line by line. Each
// one names the regexp.go production it implements; test/unit/reference/grammar.test.ts holds them
// against those regexps on generated input.

const SLASH = 0x2f;
const COLON = 0x3a;
const DOT = 0x2e;
const DASH = 0x2d;
const UNDERSCORE = 0x5f;
const PLUS = 0x2b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const AT = 0x40;
const EQUALS = 0x3d;

/** A tag is at most 128 characters: `[\w][\w.-]{0,127}`. */
const TAG_MAX = 128;
/** The reference grammar asks for at least 32 hex digits; go-digest then checks the algorithm's length. */
const DIGEST_ENCODED_MIN = 32;
const IDENTIFIER_LENGTH = 64;

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isLower = (c: number): boolean => c >= 0x61 && c <= 0x7a;
const isUpper = (c: number): boolean => c >= 0x41 && c <= 0x5a;
const isLetter = (c: number): boolean => isLower(c) || isUpper(c);
const isLowerAlnum = (c: number): boolean => isLower(c) || isDigit(c);
const isAlnum = (c: number): boolean => isLetter(c) || isDigit(c);
const isWord = (c: number): boolean => isAlnum(c) || c === UNDERSCORE;
const isHex = (c: number): boolean => isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
const isLowerHex = (c: number): boolean => isDigit(c) || (c >= 0x61 && c <= 0x66);
const isAlgorithmSeparator = (c: number): boolean =>
  c === DASH || c === UNDERSCORE || c === PLUS || c === DOT;

/** The submatches of `anchoredNameRegexp`: domain is "" when the name has none. */
export interface NameMatch {
  readonly domain: string;
  readonly path: string;
}

/** The submatches of `ReferenceRegexp` (name, tag, digest; "" when absent), with the name already split. */
export interface ReferenceMatch extends NameMatch {
  readonly name: string;
  readonly tag: string;
  readonly digest: string;
}

/** `domainAndPort`, anchored: a host name, IPv4 or bracketed IPv6 address, then an optional `:port`. */
export function isDomainAndPort(s: string): boolean {
  return domainAndPortIn(s, 0, s.length);
}

/** `anchoredNameRegexp`: `[domainAndPort "/"] remoteName`, preferring a domain whenever one fits. */
export function matchName(s: string): NameMatch | null {
  return nameIn(s, 0, s.length);
}

/** `ReferenceRegexp`: `name [":" tag] ["@" digest]`. */
export function matchReference(s: string): ReferenceMatch | null {
  const at = indexOf(s, AT, 0, s.length);
  if (at < s.length && !referenceDigestIn(s, at + 1, s.length)) return null;
  // Neither a tag nor the name's last component holds ":": the first ":" after the last "/" starts the tag.
  const tagColon = indexOf(s, COLON, lastIndexOf(s, SLASH, 0, at) + 1, at);
  if (tagColon < at && !tagIn(s, tagColon + 1, at)) return null;
  const name = nameIn(s, 0, tagColon);
  if (name === null) return null;
  return {
    ...name,
    name: s.slice(0, tagColon),
    tag: s.slice(tagColon + 1, at),
    digest: s.slice(at + 1),
  };
}

/** `anchoredTagRegexp`: `[\w][\w.-]{0,127}`. */
export function isTag(s: string): boolean {
  return tagIn(s, 0, s.length);
}

/** distribution/reference's `anchoredDigestRegexp`: any algorithm, 32 or more hex digits. */
export function isReferenceDigest(s: string): boolean {
  return referenceDigestIn(s, 0, s.length);
}

/** `anchoredIdentifierRegexp`: 64 lower-case hex digits, an image ID. */
export function isIdentifier(s: string): boolean {
  return s.length === IDENTIFIER_LENGTH && everyIn(s, 0, s.length, isLowerHex);
}

/** go-digest `DigestRegexpAnchored`: `[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`. */
export function isOciDigest(s: string): boolean {
  const colon = indexOf(s, COLON, 0, s.length);
  return (
    algorithmNameIn(s, 0, colon) &&
    colon + 1 < s.length &&
    everyIn(s, colon + 1, s.length, (c) => isAlnum(c) || c === EQUALS || c === UNDERSCORE || c === DASH)
  );
}

/** go-digest `algorithmRegexp`: `[a-z0-9]+([+._-][a-z0-9]+)*`. */
export function isAlgorithmName(s: string): boolean {
  return algorithmNameIn(s, 0, s.length);
}

/** Lower-case hex only, the encoding go-digest requires of sha256 and sha512 digests. */
export function isLowerHexString(s: string): boolean {
  return everyIn(s, 0, s.length, isLowerHex);
}

function nameIn(s: string, start: number, end: number): NameMatch | null {
  const slash = indexOf(s, SLASH, start, end);
  // A domain holds no "/", so when there is one it is exactly the text before the first "/".
  if (slash < end && domainAndPortIn(s, start, slash) && remoteNameIn(s, slash + 1, end)) {
    return { domain: s.slice(start, slash), path: s.slice(slash + 1, end) };
  }
  return remoteNameIn(s, start, end) ? { domain: '', path: s.slice(start, end) } : null;
}

/** `remoteName`: pathComponent ("/" pathComponent)*. */
function remoteNameIn(s: string, start: number, end: number): boolean {
  for (let from = start; ; ) {
    const slash = indexOf(s, SLASH, from, end);
    if (!pathComponentIn(s, from, slash)) return false;
    if (slash === end) return true;
    from = slash + 1;
  }
}

/** `pathComponent`: `[a-z0-9]+` runs joined by one ".", one or two "_", or any number of "-". */
function pathComponentIn(s: string, start: number, end: number): boolean {
  for (let i = start; ; ) {
    if (i === end || !isLowerAlnum(s.charCodeAt(i))) return false;
    while (i < end && isLowerAlnum(s.charCodeAt(i))) i++;
    if (i === end) return true;
    i = afterPathSeparator(s, i, end);
    if (i < 0) return false;
  }
}

/** `separator`: `(?:[._]|__|[-]+)`; returns where the next run must start, or -1. */
function afterPathSeparator(s: string, i: number, end: number): number {
  const c = s.charCodeAt(i);
  if (c === DOT) return i + 1;
  if (c === UNDERSCORE) return i + 1 < end && s.charCodeAt(i + 1) === UNDERSCORE ? i + 2 : i + 1;
  if (c !== DASH) return -1;
  let next = i;
  while (next < end && s.charCodeAt(next) === DASH) next++;
  return next;
}

/** `domainAndPort` = `host optionalPort`; a host holds no ":" outside brackets, so its end is forced. */
function domainAndPortIn(s: string, start: number, end: number): boolean {
  if (start === end) return false;
  const hostEnd =
    s.charCodeAt(start) === OPEN_BRACKET ? ipv6End(s, start, end) : domainNameEnd(s, start, end);
  return hostEnd >= 0 && optionalPortIn(s, hostEnd, end);
}

/** `ipv6address`: `\[[a-fA-F0-9:]+\]`; zone identifiers and dotted IPv4 tails are deliberately excluded. */
function ipv6End(s: string, start: number, end: number): number {
  const close = indexOf(s, CLOSE_BRACKET, start + 1, end);
  if (close === end || close === start + 1) return -1;
  return everyIn(s, start + 1, close, (c) => isHex(c) || c === COLON) ? close + 1 : -1;
}

/** `domainName`: domainNameComponent ("." domainNameComponent)*, up to the port's ":". */
function domainNameEnd(s: string, start: number, end: number): number {
  const colon = indexOf(s, COLON, start, end);
  for (let from = start; ; ) {
    const dot = indexOf(s, DOT, from, colon);
    if (!domainNameComponentIn(s, from, dot)) return -1;
    if (dot === colon) return colon;
    from = dot + 1;
  }
}

/** `domainNameComponent`: alphanumerics of either case with inner "-". */
function domainNameComponentIn(s: string, start: number, end: number): boolean {
  if (start === end || !isAlnum(s.charCodeAt(start)) || !isAlnum(s.charCodeAt(end - 1))) return false;
  return everyIn(s, start + 1, end - 1, (c) => isAlnum(c) || c === DASH);
}

/** `optionalPort`: `(?::[0-9]+)?`; any number of digits, the grammar does not bound the port. */
function optionalPortIn(s: string, start: number, end: number): boolean {
  if (start === end) return true;
  return s.charCodeAt(start) === COLON && start + 1 < end && everyIn(s, start + 1, end, isDigit);
}

function tagIn(s: string, start: number, end: number): boolean {
  const length = end - start;
  if (length < 1 || length > TAG_MAX || !isWord(s.charCodeAt(start))) return false;
  return everyIn(s, start + 1, end, (c) => isWord(c) || c === DOT || c === DASH);
}

/** `digestPat`: `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}`. */
function referenceDigestIn(s: string, start: number, end: number): boolean {
  const colon = indexOf(s, COLON, start, end);
  if (end - colon - 1 < DIGEST_ENCODED_MIN || !everyIn(s, colon + 1, end, isHex)) return false;
  return separatedRunsIn(s, start, colon, isLetter, isAlnum);
}

function algorithmNameIn(s: string, start: number, end: number): boolean {
  return separatedRunsIn(s, start, end, isLowerAlnum, isLowerAlnum);
}

/** Runs that each open with `first` and go on with `rest`, joined by single algorithm separators. */
function separatedRunsIn(
  s: string,
  start: number,
  end: number,
  first: (c: number) => boolean,
  rest: (c: number) => boolean,
): boolean {
  let runStart = true;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (runStart) {
      if (!first(c)) return false;
      runStart = false;
    } else if (isAlgorithmSeparator(c)) {
      runStart = true;
    } else if (!rest(c)) {
      return false;
    }
  }
  return !runStart;
}

function everyIn(s: string, start: number, end: number, test: (c: number) => boolean): boolean {
  for (let i = start; i < end; i++) if (!test(s.charCodeAt(i))) return false;
  return true;
}

/** The index of `code` in [start, end), or `end` when absent: ranges then compose without special cases. */
function indexOf(s: string, code: number, start: number, end: number): number {
  for (let i = start; i < end; i++) if (s.charCodeAt(i) === code) return i;
  return end;
}

/** The last index of `code` in [start, end), or `start - 1` when absent. */
function lastIndexOf(s: string, code: number, start: number, end: number): number {
  for (let i = end - 1; i >= start; i--) if (s.charCodeAt(i) === code) return i;
  return start - 1;
}
