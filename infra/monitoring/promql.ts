import { parser } from '@prometheus-io/lezer-promql';

/**
 * The metric names a PromQL expression selects, read with Prometheus's own PromQL grammar
 * (@prometheus-io/lezer-promql). Grafana's `$__rate_interval` and `$__interval` are read as a
 * duration. Throws on an expression that does not parse, naming where.
 */
export function selectedMetrics(expr: string): string[] {
  return [...new Set(selectors(expr).map((s) => s.metric))];
}

/** Each vector selector of an expression: its metric name and the label names it matches on. */
export function selectors(expr: string): { metric: string; labels: string[] }[] {
  const text = expr.replace(/\$__(rate_)?interval/g, '5m');
  const tree = parser.parse(text);
  const found: { metric: string; labels: string[] }[] = [];
  tree.iterate({
    enter: (node) => {
      if (node.type.isError) throw new Error(`PromQL does not parse at ${node.from}: ${JSON.stringify(text.slice(Math.max(0, node.from - 20), node.to + 20))} in ${expr}`);
      if (node.name === 'VectorSelector') {
        const id = node.node.getChild('Identifier');
        if (!id) throw new Error(`a selector without a metric name in ${expr}`);
        const labels: string[] = [];
        const matchers = node.node.getChild('LabelMatchers');
        if (matchers) {
          matchers.toTree().iterate({
            enter: (m) => {
              if (m.name === 'LabelName') labels.push(text.slice(matchers.from + m.from, matchers.from + m.to));
            },
          });
        }
        found.push({ metric: text.slice(id.from, id.to), labels });
      }
    },
  });
  return found;
}
