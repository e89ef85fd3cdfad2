// Kubernetes resource quantities (k8s.io/apimachinery/pkg/api/resource,
// ParseQuantity), parsed to an exact rational so that request <= limit can be
// compared without floating-point error.
//
//   <quantity>        ::= <signedNumber><suffix>
//   <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
//   <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
//   <decimalSI>       ::= n | u | m | "" | k | M | G | T | P | E
//   <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>
//   <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
//
// "1E" is 10^18 (exa), "1E3" is 1000; a lower-case "1e" alone is invalid.

/** An exact value num/den (den > 0). */
export interface Quantity {
  num: bigint;
  den: bigint;
}

const QUANTITY_RE = /^([+-]?)([0-9]+\.?[0-9]*|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$/;

const BINARY_SHIFT: Record<string, bigint> = { Ki: 10n, Mi: 20n, Gi: 30n, Ti: 40n, Pi: 50n, Ei: 60n };
const DECIMAL_EXP: Record<string, number> = { n: -9, u: -6, m: -3, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

/**
 * Parse a quantity. JSON numbers are accepted too (the v1 decoder accepts an
 * unquoted number for a Quantity). Returns undefined when it does not parse.
 */
export function parseQuantity(input: unknown): Quantity | undefined {
  let text: string;
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) return undefined;
    text = String(input);
  } else if (typeof input === 'string') {
    text = input;
  } else {
    return undefined;
  }
  const m = QUANTITY_RE.exec(text);
  if (!m) return undefined;
  const sign = m[1] === '-' ? -1n : 1n;
  const numberText = m[2] ?? '';
  const suffix = m[3] ?? '';
  const dot = numberText.indexOf('.');
  const intPart = dot < 0 ? numberText : numberText.slice(0, dot);
  const fracPart = dot < 0 ? '' : numberText.slice(dot + 1);
  let num = BigInt((intPart + fracPart) || '0') * sign;
  let den = 10n ** BigInt(fracPart.length);

  let exp10 = 0;
  const shift = BINARY_SHIFT[suffix];
  if (shift !== undefined) {
    num *= 1n << shift;
  } else if (suffix.startsWith('e') || (suffix.startsWith('E') && suffix.length > 1)) {
    exp10 = Number(suffix.slice(1));
    if (!Number.isSafeInteger(exp10) || Math.abs(exp10) > 1000) return undefined;
  } else if (suffix !== '') {
    exp10 = DECIMAL_EXP[suffix] ?? 0;
  }
  if (exp10 > 0) num *= 10n ** BigInt(exp10);
  if (exp10 < 0) den *= 10n ** BigInt(-exp10);
  return { num, den };
}

/** -1, 0 or 1 as a is less than, equal to or greater than b. */
export function compareQuantities(a: Quantity, b: Quantity): number {
  const l = a.num * b.den;
  const r = b.num * a.den;
  return l < r ? -1 : l > r ? 1 : 0;
}
