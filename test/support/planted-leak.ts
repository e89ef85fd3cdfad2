// A deliberate leak, for the soak test's proof that its leak check fails on one: loaded with
// `--import` into a serve process, it keeps every value JSON.parse returns (every AdmissionReview
// the webhook reads), as a cache that never evicts would. Never imported by the product.
const kept: unknown[] = [];
const parse = JSON.parse;
JSON.parse = function keepingParse(text: string, reviver?: Parameters<typeof parse>[1]): unknown {
  const value: unknown = parse(text, reviver);
  kept.push(value);
  return value;
};
