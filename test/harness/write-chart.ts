import { writeChartFiles } from './chart.js';

// `npm run chart`: renders the kustomize manifests into k8s/chart/files, which the chart's templates read.
const written = await writeChartFiles();
console.log(written.length === 0 ? 'k8s/chart/files: up to date' : `wrote ${written.join(', ')}`);
