// Config locations (`host[:port][/path]`): where a route's source or mirror lives. Routing matches them, the state
// turns them into registry clients and import writes them, so they sit here, below all three.

/** Splits `host[:port][/path]` into its registry host and its path ('' when none). */
export function splitLocation(location: string): { registry: string; path: string } {
  const slash = location.indexOf('/');
  return slash === -1
    ? { registry: location, path: '' }
    : { registry: location.slice(0, slash), path: location.slice(slash + 1) };
}
