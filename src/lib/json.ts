// JSON from bytes someone else wrote (a journal line, an etcd value, an error body): a value, or undefined when it
// is not JSON. Where the reason matters (a config file, a request body), callers use JSON.parse and say it. A leaf.
export function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
