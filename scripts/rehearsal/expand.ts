/**
 * The kubelet's `$(VAR)` expansion of env values, command and args
 * (k8s.io/kubernetes third_party/forked/golang/expansion): `$(NAME)` becomes the variable's
 * value when it is defined and stays as written otherwise; `$$` is a literal `$`.
 */
export function expand(input: string, vars: ReadonlyMap<string, string>): string {
  let out = '';
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== '$' || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const rest = input.slice(cursor + 1);
    let advance = 1;
    if (rest[0] === '$') {
      out += '$';
    } else if (rest[0] === '(') {
      const close = rest.indexOf(')');
      if (close === -1) {
        out += '$(';
      } else {
        const name = rest.slice(1, close);
        out += vars.has(name) ? vars.get(name)! : `$(${name})`;
        advance = close + 1;
      }
    } else {
      out += `$${rest[0]}`;
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}
