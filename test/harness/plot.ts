import { parse, View } from 'vega';
import { compile } from 'vega-lite';

/** One point of a series: when (seconds since the start), its value, and which series it belongs to. */
export interface Point {
  t: number;
  value: number;
  series: string;
}

/**
 * A line chart of `points`, one line per series, as an SVG document (vega-lite, rendered headless: no
 * browser and no canvas). The one module that loads vega.
 */
export async function lineChartSvg(chart: {
  title: string;
  yTitle: string;
  points: readonly Point[];
}): Promise<string> {
  const { spec } = compile({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: chart.title,
    width: 640,
    height: 240,
    data: { values: [...chart.points] },
    mark: { type: 'line', interpolate: 'step-after' },
    encoding: {
      x: { field: 't', type: 'quantitative', title: 'seconds' },
      y: { field: 'value', type: 'quantitative', title: chart.yTitle },
      color: { field: 'series', type: 'nominal', title: null },
    },
  });
  const view = new View(parse(spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
