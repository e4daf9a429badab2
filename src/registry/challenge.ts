// The WWW-Authenticate grammar of RFC 7235 §4.1: challenges, auth-params, quoted strings and token68.

export interface Challenge {
  /** The auth-scheme, lower-cased: schemes are case-insensitive (RFC 7235 §2.1). */
  scheme: string;
  /** Parameter names lower-cased, quoted-string values unescaped; a repeated name keeps its last value. */
  params: Record<string, string>;
  /** Present when the challenge carries a token68 instead of parameters (e.g. `Negotiate <base64>`). */
  token68?: string;
}

export interface ParseOptions {
  /**
   * Keep what parsed before the first malformed part instead of rejecting the header. Registries in the wild send
   * sloppy challenges (oras-go and containerd are lenient the same way); a usable realm should not be thrown away
   * because of junk after it.
   */
  lenient?: boolean;
}

// tchar of RFC 9110 §5.6.2.
const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
// token68 of RFC 7235 §2.1, without its trailing '=' padding.
const TOKEN68_CHAR = /[-._~+/0-9A-Za-z]/;

class Cursor {
  i = 0;
  constructor(readonly s: string) {}
  get done(): boolean {
    return this.i >= this.s.length;
  }
  peek(): string {
    return this.s[this.i] ?? '';
  }
  /** OWS / BWS: spaces and horizontal tabs. Returns how many were skipped. */
  skipWhitespace(): number {
    const start = this.i;
    while (this.peek() === ' ' || this.peek() === '\t') this.i++;
    return this.i - start;
  }
  /** Empty list elements are allowed anywhere in a #rule list (RFC 9110 §5.6.1.2). */
  skipListSeparators(): void {
    this.skipWhitespace();
    while (this.peek() === ',') {
      this.i++;
      this.skipWhitespace();
    }
  }
  token(): string | undefined {
    const start = this.i;
    while (!this.done && TCHAR.test(this.peek())) this.i++;
    return this.i > start ? this.s.slice(start, this.i) : undefined;
  }
  token68(): string | undefined {
    const start = this.i;
    while (!this.done && TOKEN68_CHAR.test(this.peek())) this.i++;
    if (this.i === start) return undefined;
    while (this.peek() === '=') this.i++;
    return this.s.slice(start, this.i);
  }
  quotedString(): string | undefined {
    if (this.peek() !== '"') return undefined;
    const start = this.i;
    this.i++;
    let value = '';
    while (!this.done) {
      const c = this.peek();
      if (c === '"') {
        this.i++;
        return value;
      }
      if (c === '\\') {
        this.i++;
        if (this.done) break;
        value += this.peek();
        this.i++;
        continue;
      }
      // qdtext excludes controls other than HTAB.
      const code = c.charCodeAt(0);
      if ((code < 0x20 && c !== '\t') || code === 0x7f) break;
      value += c;
      this.i++;
    }
    this.i = start;
    return undefined;
  }
}

/** `token BWS "=" BWS ( token / quoted-string )`, or undefined with the cursor unmoved. */
function authParam(cur: Cursor): [string, string] | undefined {
  const start = cur.i;
  const name = cur.token();
  if (name !== undefined) {
    cur.skipWhitespace();
    if (cur.peek() === '=') {
      cur.i++;
      cur.skipWhitespace();
      const value = cur.peek() === '"' ? cur.quotedString() : cur.token();
      if (value !== undefined) return [name.toLowerCase(), value];
    }
  }
  cur.i = start;
  return undefined;
}

/** After an element: optional whitespace, then the end or a comma. */
function atElementEnd(cur: Cursor): boolean {
  cur.skipWhitespace();
  return cur.done || cur.peek() === ',';
}

/**
 * Parses a WWW-Authenticate field value into its challenges, in order. Strict by default: a malformed header
 * yields null as a whole. With `lenient`, it never yields null and returns what parsed before the first error.
 */
export function parseWwwAuthenticate(header: string, options?: { lenient?: false }): Challenge[] | null;
export function parseWwwAuthenticate(header: string, options: { lenient: true }): Challenge[];
export function parseWwwAuthenticate(header: string, options: ParseOptions = {}): Challenge[] | null {
  const cur = new Cursor(header);
  const challenges: Challenge[] = [];
  let current: { scheme: string; params: Map<string, string>; token68?: string } | undefined;
  const finish = (): void => {
    if (current === undefined) return;
    const challenge: Challenge = { scheme: current.scheme, params: Object.fromEntries(current.params) };
    if (current.token68 !== undefined) challenge.token68 = current.token68;
    challenges.push(challenge);
    current = undefined;
  };
  const fail = (): Challenge[] | null => {
    if (!options.lenient) return null;
    finish();
    return challenges;
  };

  cur.skipListSeparators();
  while (!cur.done) {
    const scheme = cur.token();
    if (scheme === undefined) return fail();
    current = { scheme: scheme.toLowerCase(), params: new Map() };
    const spaced = cur.skipWhitespace() > 0;
    if (cur.done) {
      finish();
      break;
    }
    let first: [string, string] | undefined;
    if (cur.peek() === ',') {
      // A comma right after the scheme ends a parameterless challenge; after 1*SP it may also open a parameter
      // list with empty elements ("Scheme , realm=x"). A token68 never follows a comma.
      cur.skipListSeparators();
      first = spaced ? authParam(cur) : undefined;
      if (first === undefined) {
        finish();
        continue;
      }
    } else {
      if (!spaced) return fail();
      first = authParam(cur);
      if (first === undefined) {
        const token68 = cur.token68();
        if (token68 === undefined || !atElementEnd(cur)) return fail();
        current.token68 = token68;
        finish();
        cur.skipListSeparators();
        continue;
      }
    }
    current.params.set(first[0], first[1]);

    // More auth-params, until a list element turns out to be the next challenge's scheme.
    for (;;) {
      if (!atElementEnd(cur)) return fail();
      cur.skipListSeparators();
      if (cur.done) break;
      const param = authParam(cur);
      if (param !== undefined) {
        current.params.set(param[0], param[1]);
        continue;
      }
      const save = cur.i;
      const next = cur.token();
      cur.skipWhitespace();
      const startsChallenge = next !== undefined && cur.peek() !== '=';
      cur.i = save;
      if (!startsChallenge) return fail();
      break;
    }
    finish();
  }
  if (challenges.length === 0) return fail();
  return challenges;
}

/**
 * Parses a bare auth-param list (the part after the scheme), as go-containerregistry does: a name without a value
 * is kept with an empty value. Returns null when the list is malformed.
 */
export function parseAuthParams(list: string): Record<string, string> | null {
  const cur = new Cursor(list);
  const params = new Map<string, string>();
  cur.skipListSeparators();
  while (!cur.done) {
    const param = authParam(cur);
    if (param !== undefined) {
      params.set(param[0], param[1]);
    } else {
      const name = cur.token();
      if (name === undefined) return null;
      params.set(name.toLowerCase(), '');
    }
    if (!atElementEnd(cur)) return null;
    cur.skipListSeparators();
  }
  return Object.fromEntries(params);
}
