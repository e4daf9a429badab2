// distribution/reference regexp.go and go-digest's regexps, transcribed as JavaScript regexps: the oracle
// the scanners in src/reference/grammar.ts are held against. Tests only: these backtrack on long input.

// Go's regexp picks the submatches a backtracking engine would (leftmost-first), as JavaScript's does, and
// both read \w as [0-9A-Za-z_]; [[:xdigit:]] is spelled out, JavaScript has no POSIX classes.
const alphanumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const domainNameComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const optionalPort = '(?::[0-9]+)?';
const tag = '[\\w][\\w.-]{0,127}';
const digestPat = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}';
const identifier = '([a-f0-9]{64})';
const ipv6address = '\\[(?:[a-fA-F0-9:]+)\\]';
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const host = `(?:${domainName}|${ipv6address})`;
const domainAndPort = `${host}${optionalPort}`;
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const namePat = `(?:${domainAndPort}/)?${remoteName}`;

export const oracle = {
  domainAndPort: new RegExp(`^${domainAndPort}$`),
  anchoredName: new RegExp(`^(?:(${domainAndPort})/)?(${remoteName})$`),
  reference: new RegExp(`^(${namePat})(?::(${tag}))?(?:@(${digestPat}))?$`),
  tag: new RegExp(`^${tag}$`),
  digest: new RegExp(`^${digestPat}$`),
  identifier: new RegExp(`^${identifier}$`),
  ociDigest: /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/,
  algorithmName: /^[a-z0-9]+([+._-][a-z0-9]+)*$/,
};
